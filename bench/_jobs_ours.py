"""cv-analytics's side of jobs_bench.py: a no-op job type, the service in process, the worker and the
result processor in processes of their own.

    python bench/_jobs_ours.py worker    # the embedded job worker: the built-in types and bench.noop

The worker is the one ``cv-analytics jobs worker`` runs (``wiring.job_worker``),
with one more job type registered, which the command line cannot add; the
result processor is ``cv-analytics jobs results`` itself.
"""

from __future__ import annotations

import pathlib
import signal
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

from cv_analytics.jobs import JobContext, JobRegistry
from cv_analytics.wiring import Settings, Wiring, job_worker, result_processor

NOOP = "bench.noop"


class NoopInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def add_noop(registry: JobRegistry) -> JobRegistry:
    @registry.handler(NOOP, input=NoopInput, description="Does nothing (bench/jobs_bench.py).")
    def noop(job: NoopInput, context: JobContext) -> dict[str, Any]:
        return {}

    return registry


def run(role: str) -> None:
    wiring = Wiring(Settings.from_env())
    if role == "worker":
        add_noop(wiring.job_registry)
        worker = job_worker(wiring)
    else:
        worker = result_processor(wiring)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()
    wiring.close()


if __name__ == "__main__":
    if sys.argv[1:] not in (["worker"], ["results"]):
        sys.exit("usage: python bench/_jobs_ours.py worker|results")
    run(sys.argv[1])
