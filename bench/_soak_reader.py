"""The soak's reader: a process of its own that polls the store until each sampled interaction is there.

    python bench/_soak_reader.py RUN TOTAL EVERY OUT    # CV_ANALYTICS_DATA_DIR names the data directory

Interactions 0, EVERY, 2×EVERY… below TOTAL of soak run RUN, in order: each is looked up every
2 ms until a reader sees it (committed), and the wall-clock second it was first seen goes to
OUT as JSON ``{"seen": {index: seconds}}``, written when the last is seen, on SIGTERM, or after
waiting ``GIVE_UP_SECONDS`` for one. A process of its own, so that its connection's page cache
(which fills as the store grows) is not counted as the chatbot's memory.
"""

from __future__ import annotations

import json
import pathlib
import signal
import sys
import time
import uuid

GIVE_UP_SECONDS = 300.0


def interaction_id(run: int, i: int) -> str:
    """The soak's i-th correlation id (derived, so no process keeps a list of them while it soaks)."""
    return str(uuid.UUID(int=(run << 64) | (1 << 63) | i))


def main() -> None:
    from cv_analytics.wiring import Settings, Wiring

    run, total, every, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), pathlib.Path(sys.argv[4])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    seen: dict[int, float] = {}
    with Wiring(Settings.from_env()) as wiring:
        store = wiring.store
        for i in range(0, total, every):
            cid, waiting_since = interaction_id(run, i), time.monotonic()
            while not stopping and store.get_interaction(cid) is None:
                if time.monotonic() - waiting_since > GIVE_UP_SECONDS:
                    stopping.append(True)
                    break
                time.sleep(0.002)
            if stopping:
                break
            seen[i] = time.time()
    written = out.with_suffix(".partial")
    written.write_text(json.dumps({"seen": seen}), encoding="utf-8")
    written.replace(out)  # whole or absent for the benchmark waiting on it


if __name__ == "__main__":
    main()
