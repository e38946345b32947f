"""Load -> plan -> apply, again for the keys whose preconditions no longer held.

Generic over what a key is (a correlation id today, a job id tomorrow): the
caller's ``attempt`` loads the keys' state, plans, applies, and returns the
keys a concurrent writer changed in between. Rounds are bounded and spaced by
the injected clock (full-jitter backoff), so tests drive them without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import TypeVar

from .._backoff import backoff_delay
from ..clock import Clock

K = TypeVar("K", bound=Hashable)

#: Rounds of load–plan–apply before the contended keys are given up on.
MAX_ROUNDS = 5
#: Backoff between rounds: a concurrent writer is usually done within milliseconds.
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CEILING_SECONDS = 0.2


def apply_until_settled(
    keys: set[K],
    attempt: Callable[[set[K]], set[K]],
    *,
    clock: Clock,
    rounds: int = MAX_ROUNDS,
    rng: random.Random | None = None,
) -> set[K]:
    """Run ``attempt`` on ``keys``, then on the keys it reports contended, up to ``rounds`` times.

    Returns the keys still contended after the last round (empty when all settled).
    """
    rng = rng or random.Random()
    todo = keys
    for round_number in range(1, rounds + 1):
        if not todo:
            break
        todo = attempt(todo)
        if todo and round_number < rounds:
            clock.sleep(backoff_delay(round_number, BACKOFF_BASE_SECONDS, BACKOFF_CEILING_SECONDS, rng))
    return todo
