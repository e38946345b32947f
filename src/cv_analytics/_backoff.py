"""Retry delays shared by the client's sender and the worker."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, ceiling: float, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential backoff with full jitter.

    Uniform in ``[0, min(ceiling, base * 2**(attempt-1))]``, so clients that lost
    the queue together do not come back together
    (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
    """
    return rng.uniform(0.0, min(ceiling, base * 2 ** min(attempt - 1, 60)))
