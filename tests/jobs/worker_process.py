"""A job worker process with the test job types: ``python -m tests.jobs.worker_process`` (settings from the environment).

SIGTERM finishes the job in hand, as ``cv-analytics jobs worker`` does; the tests also kill it with SIGKILL.
"""

from __future__ import annotations

import signal
import sys

from cv_analytics.wiring import Wiring, job_worker

from .types_for_tests import register_test_types


def main() -> None:
    with Wiring() as wiring:
        register_test_types(wiring.job_registry)
        worker = job_worker(wiring, wait_seconds=0.2)
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        print(f"ready {worker.owner}", flush=True)
        stats = worker.run()
        print(f"stopped {stats}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
