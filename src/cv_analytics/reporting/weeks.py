"""ISO 8601 weeks (``2026-W47``), in UTC: the unit every report covers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..exceptions import ConfigurationError

_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
FIRST_YEAR, LAST_YEAR = 1970, 9998


@dataclass(frozen=True, order=True)
class IsoWeek:
    """One ISO week: Monday 00:00 UTC up to the next Monday."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """``2026-W47`` → IsoWeek; :class:`ConfigurationError` for anything else, including week 53 of a 52-week year."""
        m = _WEEK.fullmatch(text.strip())
        if m is None:
            raise ConfigurationError(f"a week must look like 2026-W47 (ISO 8601 year and week), not {text!r}")
        year, number = int(m.group(1)), int(m.group(2))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            # events carry ms since 1970; the week before or after must still be a date
            raise ConfigurationError(f"{text!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR}")
        try:
            dt.date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ConfigurationError(f"{text!r} is not a week of {year}: ISO weeks run from W01 to W52 or W53") from None
        return cls(year, number)

    @classmethod
    def containing(cls, when: dt.datetime | dt.date | float) -> IsoWeek:
        """The week holding a moment (a datetime, a date, or seconds since the epoch; naive means UTC)."""
        day = when if isinstance(when, dt.date) and not isinstance(when, dt.datetime) else _as_utc(when).date()
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def monday(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> dt.date:
        return self.monday + dt.timedelta(days=6)

    @property
    def start(self) -> dt.datetime:
        """Monday 00:00 UTC."""
        return dt.datetime.combine(self.monday, dt.time(), tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The next Monday 00:00 UTC (exclusive)."""
        return self.start + dt.timedelta(days=7)

    def previous(self) -> IsoWeek:
        return IsoWeek.containing(self.monday - dt.timedelta(days=7))

    def next(self) -> IsoWeek:
        return IsoWeek.containing(self.monday + dt.timedelta(days=7))

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.number:02d}"


def _as_utc(when: dt.datetime | float) -> dt.datetime:
    if isinstance(when, int | float):
        return dt.datetime.fromtimestamp(when, tz=dt.UTC)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def parse_week(text: str) -> str:
    """Validate and normalise a week (``2026-W47``)."""
    return str(IsoWeek.parse(text))


def last_complete_week(now: dt.datetime | float) -> str:
    """The last ISO week that has ended by ``now`` (UTC): on any day of 2026-W48, 2026-W47."""
    return str(IsoWeek.containing(now).previous())


def previous_week(week: str) -> str:
    return str(IsoWeek.parse(week).previous())
