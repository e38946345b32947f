"""The no-op task of jobs_bench.py's huey peer (the consumer imports this module: `huey_consumer _huey_tasks.huey`)."""

import os

from huey import SqliteHuey

huey = SqliteHuey("bench", filename=os.environ["BENCH_HUEY_DB"])


@huey.task()
def noop() -> dict:
    return {}  # not None: huey stores no result for None, and "succeeded" is "the result is there"
