"""One behavioural suite for every queue backend: memory, SQLite, and SQS on moto (see envs.py)."""

from tests.queues.envs import MemoryQueueEnv, SQLiteQueueEnv, queue_env

__all__ = ["MemoryQueueEnv", "SQLiteQueueEnv", "queue_env"]
