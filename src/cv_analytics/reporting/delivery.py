"""Delivering the weekly report: once per week and recipient, by SMTP, to files, or (later) SES.

The MIME message is rendered once (:func:`build_message`); a deliverer only
moves it. A deliverer is anything with a ``channel`` name and a ``deliver``
method (:class:`Deliverer`), raising :class:`ReportDeliveryError` when it
cannot: :func:`send_weekly_report` then records nothing, so the next run
retries. What was delivered is recorded in the store
(:meth:`Store.record_report_delivery`), which is what makes a rerun, or a
restarted scheduler, send nothing twice.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import os
import pathlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from ..clock import Clock, SystemClock, now_ms
from ..exceptions import ConfigurationError, ReportDeliveryError
from ..stores.models import ReportDelivery
from .builder import build_report
from .render import RenderedReport, render
from .weeks import parse_week

if TYPE_CHECKING:
    from ..stores.base import Store
    from ..insights import Insights, SkillResolver

#: File extension of each output format.
FORMAT_EXTENSIONS = {"html": "html", "text": "txt", "json": "json", "eml": "eml"}
ALL_FORMATS = tuple(FORMAT_EXTENSIONS)
#: Sender used in .eml files written without SENDER_EMAIL.
FALLBACK_SENDER = "cv-analytics@localhost"


@dataclass(frozen=True)
class OutgoingReport:
    """A rendered report addressed to its recipients, with its MIME message built once."""

    rendered: RenderedReport
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def week(self) -> str:
        return self.rendered.week

    @property
    def mime(self) -> bytes:
        """The message as sent on the wire (CRLF line ends)."""
        return self.message.as_bytes(policy=email.policy.SMTP)

    @property
    def description(self) -> str:
        return f"the {self.week} report"


@dataclass(frozen=True)
class OutgoingNotice:
    """A plain-text notice (an alarm's change of state) sent by the report's email deliverers."""

    subject: str
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @classmethod
    def build(cls, subject: str, text: str, *, sender: str, recipients: Sequence[str], when: dt.datetime) -> OutgoingNotice:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Date"] = email.utils.format_datetime(when)
        domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = email.utils.make_msgid(idstring="cv-analytics.notice", domain=domain)
        message.set_content(text, subtype="plain", charset="utf-8")
        return cls(subject, sender, tuple(recipients), message)

    @property
    def mime(self) -> bytes:
        return self.message.as_bytes(policy=email.policy.SMTP)

    @property
    def description(self) -> str:
        return f"the notice {self.subject!r}"


class Deliverer(Protocol):
    """Moves an :class:`OutgoingReport` somewhere; raises :class:`ReportDeliveryError` if it cannot."""

    #: recorded with each delivery: ``smtp``, ``file``, ``ses``…
    channel: str
    #: whether a delivery reaches the recipient (SMTP, SES): only those are recorded as sent,
    #: so a test run that writes files never stops the real email (issue 7, item 11)
    counts_as_sent: bool

    def deliver(self, outgoing: OutgoingReport) -> None: ...


def check_address(address: str, what: str) -> str:
    """An email address (``owner@example.com`` or ``Owner <owner@example.com>``), or
    :class:`ConfigurationError` naming the setting; line breaks are refused (header injection)."""
    text = address.strip()
    _, parsed = email.utils.parseaddr(text)
    if not text or any(c in text for c in "\r\n") or "@" not in parsed or any(c.isspace() for c in parsed):
        raise ConfigurationError(f"{what} must be an email address like owner@example.com, not {address!r}")
    return text


def build_message(
    rendered: RenderedReport, *, sender: str, recipients: Sequence[str], when: dt.datetime
) -> EmailMessage:
    """multipart/alternative: the plain-text rendering, then the HTML one (clients show the last they can)."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.format_datetime(when)
    # make_msgid's default domain is socket.getfqdn(), which may wait on DNS: use the sender's.
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.utils.make_msgid(idstring=f"cv-analytics.{rendered.week}", domain=domain)
    message["X-CV-Analytics-Week"] = rendered.week
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return message


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    """Readers never see half a file: write beside it, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def report_filename(week: str, fmt: str) -> str:
    return f"cv-analytics-report-{week}.{FORMAT_EXTENSIONS[fmt]}"


def normalise_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """Validate format names (``html``, ``text``/``txt``, ``json``, ``eml``, ``all``)."""
    chosen: list[str] = []
    for fmt in formats:
        name = {"txt": "text", "all": "all"}.get(fmt.lower(), fmt.lower())
        if name == "all":
            chosen.extend(ALL_FORMATS)
        elif name in FORMAT_EXTENSIONS:
            chosen.append(name)
        else:
            raise ConfigurationError(f"unknown report format {fmt!r}: use html, text, json, eml or all")
    return tuple(dict.fromkeys(chosen))


def write_files(outgoing: OutgoingReport, out_dir: pathlib.Path, formats: Sequence[str]) -> dict[str, pathlib.Path]:
    """Write the rendered report in ``formats`` under ``out_dir``; returns format -> path."""
    data = {
        "html": lambda: outgoing.rendered.html.encode(),
        "text": lambda: outgoing.rendered.text.encode(),
        "json": lambda: outgoing.rendered.json.encode(),
        "eml": lambda: outgoing.mime,
    }
    paths: dict[str, pathlib.Path] = {}
    for fmt in normalise_formats(formats):
        path = out_dir / report_filename(outgoing.week, fmt)
        _write_atomic(path, data[fmt]())
        paths[fmt] = path
    return paths


@dataclass
class FileDeliverer:
    """Delivers into a directory: ``.html``, ``.txt``, ``.json`` and the ``.eml`` as it would be mailed."""

    out_dir: pathlib.Path
    formats: tuple[str, ...] = ALL_FORMATS
    channel: str = "file"
    #: writing files is not sending: the week's email is still due afterwards. True for an
    #: outbox another program mails from (a drop directory): then it is recorded as sent
    counts_as_sent: bool = False
    written: dict[str, pathlib.Path] = field(default_factory=dict, init=False)

    def deliver(self, outgoing: OutgoingReport) -> None:
        try:
            self.written = write_files(outgoing, pathlib.Path(self.out_dir), self.formats)
        except OSError as exc:
            raise ReportDeliveryError(
                f"could not write the {outgoing.week} report to {self.out_dir}: {exc.strerror or exc}; "
                "check the directory exists and is writable (it will be retried on the next run)"
            ) from exc

    def describe(self) -> str:
        return f"files in {self.out_dir}"


# -- sending once -------------------------------------------------------------------


class DeliveryStatus(str, Enum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"


@dataclass(frozen=True)
class DeliveryResult:
    week: str
    recipient: str
    status: DeliveryStatus
    channel: str
    #: ms since the epoch: now for SENT, the earlier delivery for ALREADY_SENT
    sent_at: int


class PartialDeliveryError(ReportDeliveryError):
    """Some recipients got the report and some did not; ``results`` says who did."""

    def __init__(self, message: str, results: list[DeliveryResult]) -> None:
        super().__init__(message)
        self.results = results


def send_weekly_report(
    store: Store,
    week: str,
    deliverer: Deliverer,
    *,
    insights: Insights,
    catalog: SkillResolver,
    sender: str,
    recipients: Sequence[str],
    force: bool = False,
    clock: Clock | None = None,
) -> list[DeliveryResult]:
    """Send ``week``'s report to each recipient who has not had it (to all with ``force``).

    Only deliveries that reach the recipient (``deliverer.counts_as_sent``: SMTP,
    SES) are recorded and skipped next time; a file delivery is written every time.

    A recipient is marked sent only after the deliverer returned. If it raises,
    that recipient stays unsent (retried on the next run) and, after trying the
    others, :class:`ReportDeliveryError` is raised (a :class:`PartialDeliveryError`
    when some recipients did get it). Sending is at least once: should the store
    fail right after a delivery, that delivery is repeated next time.
    """
    week = parse_week(week)
    clock = clock or store.clock
    results: dict[str, DeliveryResult] = {}
    due: list[str] = []
    for recipient in dict.fromkeys(recipients):
        previous = None if force or not deliverer.counts_as_sent else store.get_report_delivery(week, recipient)
        if previous is None:
            due.append(recipient)
        else:
            results[recipient] = DeliveryResult(
                week, recipient, DeliveryStatus.ALREADY_SENT, previous.channel, previous.sent_at
            )
    failures: list[str] = []
    if due:
        rendered = render(build_report(insights, week, catalog=catalog, clock=clock))
        for recipient in due:
            when = dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC)
            message = build_message(rendered, sender=sender, recipients=[recipient], when=when)
            try:
                deliverer.deliver(OutgoingReport(rendered, sender, (recipient,), message))
            except ReportDeliveryError as exc:
                failures.append(f"{recipient}: {exc}")
                continue
            sent_at = now_ms(clock)
            if deliverer.counts_as_sent:
                store.record_report_delivery(ReportDelivery(week, recipient, deliverer.channel, sent_at))
            results[recipient] = DeliveryResult(week, recipient, DeliveryStatus.SENT, deliverer.channel, sent_at)
    ordered = [results[r] for r in dict.fromkeys(recipients) if r in results]
    if failures:
        detail = "; ".join(failures)
        if ordered:
            raise PartialDeliveryError(f"the {week} report was not delivered to everyone: {detail}", ordered)
        raise ReportDeliveryError(f"the {week} report was not delivered: {detail}")
    return ordered


def write_report(
    insights: Insights,
    week: str,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("html",),
    *,
    catalog: SkillResolver,
    clock: Clock | None = None,
    sender: str | None = None,
    recipients: Sequence[str] = (),
) -> dict[str, pathlib.Path]:
    """Build ``week``'s report and write it in ``formats`` under ``out_dir``; returns format -> path.

    Writing files is not sending: nothing is recorded in the store.
    """
    week = parse_week(week)
    clock = clock or SystemClock()
    rendered = render(build_report(insights, week, catalog=catalog, clock=clock))
    sender = sender or FALLBACK_SENDER
    to = tuple(recipients) or (sender,)
    when = dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC)
    message = build_message(rendered, sender=sender, recipients=to, when=when)
    return write_files(OutgoingReport(rendered, sender, to, message), pathlib.Path(out_dir), tuple(formats))
