"""The DynamoDB store backend (boto3): ``DynamoDBStore`` over three tables.

``backend`` applies the base class's plans with condition expressions,
``codec`` maps interactions and pending halves to items, ``requests`` holds the
client calls (errors, batches, pages), ``maintenance`` tidies ahead of TTL.
"""

from .backend import DynamoDBStore

__all__ = ["DynamoDBStore"]
