"""DynamoDB calls as the store makes them: errors translated, batches retried, pages followed.

Separate from the store so that another repository over the same client (the
job store, :mod:`cv_analytics.stores.jobs.dynamodb`) shares it. Every call asks for
``ReturnConsumedCapacity=TOTAL``, which a
:class:`~cv_analytics.boto.metering.RequestCounter` adds up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ...boto.clients import ClientError, error_codes, translated_errors
from ...clock import Clock
from ...exceptions import StoreError, StoreUnavailableError

#: BatchGetItem takes at most 100 keys, BatchWriteItem 25 requests.
BATCH_GET_KEYS = 100
BATCH_WRITE_ITEMS = 25
#: Retries of the unprocessed part of a batch read or write (throttled partitions).
MAX_UNPROCESSED_RETRIES = 8

#: The error code of a table that does not exist.
_TABLE_MISSING = frozenset({"ResourceNotFoundException"})
_CONDITIONAL_FAILED = "ConditionalCheckFailedException"
#: The analytics store's tables, as a missing table's error names them.
ANALYTICS_TABLE_VARIABLES = "CV_ANALYTICS_EVENTS_TABLE, CV_ANALYTICS_INTERACTIONS_TABLE and CV_ANALYTICS_REPORTS_TABLE"


class ConditionFailed(Exception):
    """A conditional write found the item changed since it was read."""


class DynamoDBRequests:
    """One boto3 DynamoDB client, with the store's error translation and batch handling."""

    def __init__(self, client: Any, clock: Clock, *, table_variables: str = ANALYTICS_TABLE_VARIABLES) -> None:
        self.client = client
        self.clock = clock
        #: named in the error when a table is missing: the variables that name the tables
        self.table_variables = table_variables

    def guard(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translated_errors(
            action,
            "DynamoDB",
            missing_codes=_TABLE_MISSING,
            missing="a DynamoDB table does not exist ({detail}); create the tables with "
            f"`cv-analytics aws bootstrap` and export {self.table_variables}",
            unavailable=StoreUnavailableError,
            error=StoreError,
        )

    def call(self, action: str, operation: str, **request: Any) -> dict[str, Any]:
        """One DynamoDB call, errors translated; a failed condition raises :class:`ConditionFailed`."""
        with self.guard(action):
            try:
                return dict(getattr(self.client, operation)(ReturnConsumedCapacity="TOTAL", **request))
            except ClientError as exc:
                if _CONDITIONAL_FAILED in error_codes(exc):
                    raise ConditionFailed from exc
                raise

    def batch_get(self, request: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(table, items) as ``BatchGetItem`` returns them, unprocessed keys asked again."""
        for attempt in range(MAX_UNPROCESSED_RETRIES + 1):
            response = self.call("read events and interactions", "batch_get_item", RequestItems=request)
            yield from response.get("Responses", {}).items()
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            self._backoff(attempt)
        raise StoreUnavailableError("DynamoDB kept throttling a batch read; retry later")

    def batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_ITEMS):
            pending: dict[str, Any] = {table: requests[start : start + BATCH_WRITE_ITEMS]}
            for attempt in range(MAX_UNPROCESSED_RETRIES + 1):
                response = self.call(f"write to {table}", "batch_write_item", RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                self._backoff(attempt)
            else:
                raise StoreUnavailableError(f"DynamoDB kept throttling writes to {table}; retry later")

    def paginate(self, operation: str, **request: Any) -> Iterator[dict[str, Any]]:
        """Every item of a ``Query`` or ``Scan``, page after page."""
        for page in self.pages(operation, **request):
            yield from page.get("Items", [])

    def pages(self, operation: str, **request: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = self.call(f"{operation} {request.get('TableName')}", operation, **request)
            yield response
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _backoff(self, attempt: int) -> None:
        # Unprocessed items mean a throttled partition: back off before asking again (AWS's advice for batch calls).
        self.clock.sleep(min(1.0, 0.05 * 2**attempt))
