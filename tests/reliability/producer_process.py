"""A producer process for scenario 3: the real client, logging at a steady rate with a burst, flushing periodically.

``python -m tests.reliability.producer_process --run K ...`` logs the pairs of
``contract_traffic(pairs, seed=, prefix="run<K>-")`` in order through the process-wide client
(:func:`cv_analytics.get_client`, on ``$CV_ANALYTICS_DATA_DIR``'s queue and spool) and prints, on stdout,
one line per step, so that a test that kills it with SIGKILL knows where it was:

* ``ready``: the client is up (its first flush, which replays what a killed predecessor spooled, is done);
* ``logging <n>``: about to log events up to the ``n``-th (an upper bound of what was logged);
* ``confirmed <n> <stats json>``: ``flush()`` returned True with the first ``n`` events logged;
* ``done``: everything logged, flushed and the client closed.

Each line ends in `` @<time.monotonic()>``, for reading a run's timeline.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from cv_analytics import get_client

from .harness import contract_traffic

#: Events logged between two looks at the clock (and two ``logging`` lines) at the steady rate.
SLICE = 10


def _say(line: str) -> None:
    print(f"{line} @{time.monotonic():.3f}", flush=True)


def _confirm(client, logged: int, timeout: float) -> None:
    if client.flush(timeout):
        stats = asdict(client.stats())
        counts = {name: stats[name] for name in ("sent", "spooled", "dropped", "failed", "invalid")}
        _say(f"confirmed {logged} {json.dumps(counts, separators=(',', ':'))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=int, required=True, help="run number: the prefix of its correlation ids")
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=2_000, help="events per second, outside the burst")
    parser.add_argument("--flush-every", type=float, default=0.2, help="seconds between two flush() calls")
    parser.add_argument("--burst-at", type=float, default=0.3, help="seconds after ready when the burst is logged")
    parser.add_argument("--burst", type=int, default=0, help="events logged at once (the client spools a burst)")
    args = parser.parse_args()

    events = contract_traffic(args.pairs, seed=args.seed, prefix=f"run{args.run}-").events
    client = get_client()
    if not client.flush(60):
        raise SystemExit("the first flush did not finish")
    _say("ready")
    started = time.monotonic()
    next_flush = started + args.flush_every
    logged = paced = 0
    burst_left = args.burst
    while logged < len(events):
        now = time.monotonic()
        if burst_left and now - started >= args.burst_at:
            size = min(burst_left, len(events) - logged)
            burst_left = 0
        else:
            size = min(SLICE, len(events) - logged)
            delay = started + paced / args.rate - now
            if delay > 0:
                time.sleep(delay)
            paced += size
        _say(f"logging {logged + size}")
        for event in events[logged : logged + size]:
            client.log(event)
        logged += size
        if time.monotonic() >= next_flush:
            _confirm(client, logged, timeout=30)
            next_flush = time.monotonic() + args.flush_every
    _confirm(client, logged, timeout=60)
    client.close()
    _say("done")


if __name__ == "__main__":
    main()
