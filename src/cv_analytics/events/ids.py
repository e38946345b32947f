"""Deduplication and message group ids that always fit SQS (128 characters of ASCII punctuation and alphanumerics)."""

from __future__ import annotations

import hashlib
import re

#: SQS's limit on deduplication and message group ids.
MAX_SQS_ID_CHARS = 128


# -- ids that fit SQS ------------------------------------------------------------

#: Characters SQS allows in deduplication and group ids: alphanumerics and ASCII punctuation.
_SQS_ID_CHARS = re.compile(r"[!-~]+")
#: Characters of the original kept in front of the hash of a long id (readable in logs).
_HASHED_PREFIX_CHARS = 40


def _fits_sqs(text: str) -> bool:
    return len(text) <= MAX_SQS_ID_CHARS and _SQS_ID_CHARS.fullmatch(text) is not None


def _hashed(text: str) -> str:
    # a readable prefix (SQS-safe characters only) and the SHA-256 of the whole: stable, and
    # two different texts never share it, however long their common prefix
    prefix = "".join(ch for ch in text[:_HASHED_PREFIX_CHARS] if "!" <= ch <= "~")
    return f"{prefix}~{hashlib.sha256(text.encode()).hexdigest()}"


def deduplication_id(correlation_id: str, event_type: str) -> str:
    """The FIFO deduplication id of one event: the one rule every producer path uses.

    ``<correlationId>:<eventType>`` when that fits SQS (at most 128 characters,
    ASCII letters, digits and punctuation); otherwise a form that always fits
    (at most 105 characters): up to 40 characters of the plain form, ``~``, and the
    SHA-256 of the whole plain form. Stable (a resend deduplicates) and distinct
    for a query and its response, whatever the correlation id (the schema takes
    up to 256 characters).
    """
    plain = f"{correlation_id}:{event_type}"
    return plain if _fits_sqs(plain) else _hashed(plain)


def message_group_id(key: str) -> str:
    """A FIFO message group id for ``key`` (a session or correlation id) that always fits SQS.

    ``key`` itself when it fits (see :func:`deduplication_id`), else its stable hashed form.
    """
    return key if _fits_sqs(key) else _hashed(key)

