"""The processor: correlate query and response events into interactions, exactly once."""

from .batch import BatchProcessor, BatchResult, ItemResult, Status
from .worker import Worker, WorkerStats

__all__ = ["BatchProcessor", "BatchResult", "ItemResult", "Status", "Worker", "WorkerStats"]
