"""cv-analytics's job worker for jobs_bench.py: the built-in job types and a no-op one.

    python bench/_jobs_ours.py    # as `cv-analytics jobs worker`, with bench.noop registered

The worker is the one ``cv-analytics jobs worker`` runs (``wiring.job_worker``),
with one more job type, which the command line cannot add; the result
processor is ``cv-analytics jobs results`` itself.
"""

from __future__ import annotations

import signal
from typing import Any

from pydantic import BaseModel, ConfigDict

from cv_analytics.jobs import JobContext, JobRegistry
from cv_analytics.wiring import Settings, Wiring, job_worker

NOOP = "bench.noop"


class NoopInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def add_noop(registry: JobRegistry) -> JobRegistry:
    @registry.handler(NOOP, input=NoopInput, description="Does nothing (bench/jobs_bench.py).")
    def noop(job: NoopInput, context: JobContext) -> dict[str, Any]:
        return {}

    return registry


def run_worker() -> None:
    wiring = Wiring(Settings.from_env())
    add_noop(wiring.job_registry)
    worker = job_worker(wiring)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()
    wiring.close()


if __name__ == "__main__":
    run_worker()
