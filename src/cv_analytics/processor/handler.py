"""The analytics record handler: query and response events into the store, a whole batch per transaction.

Plugged into :class:`~cv_analytics.queues.batch.BatchEngine` by the embedded
worker and by the Lambda analytics handler alike; the queue rules (permanent
and transient failures, the FIFO rule, dead-lettering) are the engine's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events import QueryEvent, ResponseEvent, parse_event
from ..events.redaction import redact_pii
from ..exceptions import StoreError
from ..queues.base import Message
from ..queues.batch import Outcome, Succeeded
from ..stores.base import Store

AnalyticsEvent = QueryEvent | ResponseEvent


class AnalyticsHandler:
    """Decodes analytics events and records them, correlated, exactly once.

    A body that is not a valid event (malformed, invalid, unknown type, too
    deep) fails in :meth:`decode`: a permanent failure. A store error means the
    store is unavailable or refused the write as a whole: every event of the
    call is retried (recording is idempotent, so a retry after a partial
    write counts nothing twice).
    """

    transient_errors: tuple[type[BaseException], ...] = (StoreError,)

    def __init__(self, store: Store, *, redact: bool = False) -> None:
        self.store = store
        #: redact e-mail addresses and phone numbers from query text before it is stored
        self.redact = redact

    def decode(self, message: Message) -> AnalyticsEvent:
        event = parse_event(message.body)
        if self.redact and isinstance(event, QueryEvent):
            redacted = redact_pii(event.query)
            if redacted != event.query:
                event = event.model_copy(update={"query": redacted})
        return event

    def handle(self, records: Sequence[AnalyticsEvent]) -> list[Outcome]:
        return [Succeeded(outcome) for outcome in self.store.record_events(list(records))]

    def check_health(self) -> None:
        """Raises a :class:`~cv_analytics.exceptions.StoreError` while the store does not answer."""
        self.store.ping()
