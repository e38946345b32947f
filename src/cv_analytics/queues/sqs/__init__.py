"""The Amazon SQS queue backend, through boto3 (see ``queue``'s docstring for how the seam maps onto SQS).

``backend`` (clients, lookup, creation), ``queue`` (send, receive, acknowledge,
dead-letter), ``admin`` (peek, redrive, attributes, purge), ``mapping`` (limits,
error codes, attribute conversions).
"""

from .backend import SQSQueueBackend
from .mapping import ORIGIN_ATTRIBUTE
from .queue import SQSQueue

__all__ = ["ORIGIN_ATTRIBUTE", "SQSQueue", "SQSQueueBackend"]
