"""The embedded queue: SQS semantics on one SQLite file (see the modules' docstrings).

``schema`` (tables, migrations, SQL), ``notifier`` (long-poll wake-ups, fork
handling), ``backend`` (the file and its queues), ``queue`` (send, receive,
acknowledge, fail), ``admin`` (redrive, peek, attributes, purge, sweeps).
"""

from ..presets import dead_letter_queue_name
from .backend import SQLiteQueueBackend
from .queue import SQLiteQueue

__all__ = ["SQLiteQueue", "SQLiteQueueBackend", "dead_letter_queue_name"]
