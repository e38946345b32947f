"""Random identifiers that are cheap to make on a hot path."""

from __future__ import annotations

import random

_getrandbits = random.getrandbits
_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


def random_uuid4() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` gives.

    Drawn from the ``random`` module rather than ``os.urandom``: the system call
    costs several times the formatting, and it releases the GIL, so a busy
    background thread that calls it keeps a request thread waiting a whole GIL
    switch interval (5 ms). These ids need uniqueness, not secrecy: 122 random
    bits from a generator seeded from the OS, which ``random`` reseeds in a
    forked child so that two processes never draw the same sequence.
    """
    h = "%032x" % ((_getrandbits(128) & _VERSION_MASK) | _VERSION_4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
