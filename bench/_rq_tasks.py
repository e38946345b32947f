"""The no-op job of jobs_bench.py's RQ peer (the RQ worker imports it by name: `_rq_tasks.noop`)."""


def noop() -> dict:
    return {}
