"""Redaction of e-mail addresses and phone numbers from recruiters' query text (``CV_ANALYTICS_REDACT_PII``).

Applied by the analytics handler before an event reaches the store, so the
text is never written; on every path (the client, ``/v1/events``, SQS).
Deliberately conservative about numbers: a phone number needs at least nine
digits (or a leading ``+`` and seven), so years, ranges like ``2019-2023`` and
"5+ years" stay.
"""

from __future__ import annotations

import re

EMAIL_PLACEHOLDER = "[email]"
PHONE_PLACEHOLDER = "[phone]"

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
#: digits with the separators people type in phone numbers, starting and ending on a digit
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(\+)?\(?\d[\d\s().\-/]{5,}\d(?!\w)")
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d\s*[-/–]\s*(?:19|20)\d\d")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    international = match.group(1) is not None
    if digits > 15 or digits < (7 if international else 9) or _YEAR_RANGE.fullmatch(text.strip()):
        return text
    return PHONE_PLACEHOLDER


def redact_pii(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced by ``[email]`` and ``[phone]``."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    if sum(ch.isdigit() for ch in text) >= 7:
        text = _PHONE_CANDIDATE.sub(_phone, text)
    return text
