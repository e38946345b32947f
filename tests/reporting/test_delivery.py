"""Delivery: a real SMTP server on loopback receives the report; send-once, --force, outages, TLS, files."""

from __future__ import annotations

import email
import email.policy
import json

import pytest

from cv_analytics.wiring import Settings
from cv_analytics.exceptions import ConfigurationError, ReportDeliveryError
from cv_analytics.reporting.delivery import (
    DeliveryStatus,
    FileDeliverer,
    PartialDeliveryError,
    send_weekly_report,
)
from cv_analytics.wiring import insights_for
from cv_analytics.wiring.reporting import addresses, open_deliverer, smtp_settings
from cv_analytics.reporting.smtp import SMTPDeliverer, SMTPSecurity, SMTPSettings

from . import smtp_server
from .conftest import free_port
from .dataset import CATALOG, WEEK

SENDER = "CV analytics <reports@cv.example.dev>"
OWNER = "owner@cv.example.dev"


@pytest.fixture
def sink():
    return smtp_server.Sink()


@pytest.fixture
def plain_server(sink):
    port = free_port()
    controller = smtp_server.start(sink, port)
    yield port
    controller.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return smtp_server.make_private_ca(tmp_path_factory.mktemp("tls"))


def _smtp(port: int, **kwargs) -> SMTPDeliverer:
    return SMTPDeliverer(SMTPSettings(host="127.0.0.1", port=port, security=SMTPSecurity.NONE, timeout=10, **kwargs))


def _send(store, deliverer, recipients=(OWNER,), **kwargs):
    return send_weekly_report(
        store, WEEK, deliverer, insights=insights_for(store), catalog=CATALOG,
        sender=SENDER, recipients=recipients, **kwargs,
    )


@pytest.mark.slow
def test_smtp_server_receives_the_multipart_report_and_it_parses_back(loaded_store, sink, plain_server):
    results = _send(loaded_store, _smtp(plain_server))
    assert [(r.recipient, r.status, r.channel) for r in results] == [(OWNER, DeliveryStatus.SENT, "smtp")]
    [got] = sink.received
    assert (got.sender, got.recipients) == ("reports@cv.example.dev", [OWNER])
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "CV analytics 2026-W47 (16 Nov – 22 Nov 2026): 11 recruiter questions"
    assert message["To"] == OWNER and message["X-CV-Analytics-Week"] == WEEK
    assert message["Message-ID"].endswith("@cv.example.dev>")
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert "1. Strengthen Kubernetes in the CV" in text.get_content()
    assert "Week 2026-W47" in html.get_content() and "Kubernetes in production?" in html.get_content()
    delivery = loaded_store.get_report_delivery(WEEK, OWNER)
    assert (delivery.channel, delivery.sent_at) == ("smtp", results[0].sent_at)


@pytest.mark.slow
def test_report_is_sent_once_per_week_and_recipient_unless_forced(loaded_store, sink, plain_server, clock):
    deliverer = _smtp(plain_server)
    first = _send(loaded_store, deliverer)
    clock.advance(3600)
    again = _send(loaded_store, deliverer)
    assert again[0].status is DeliveryStatus.ALREADY_SENT and again[0].sent_at == first[0].sent_at
    assert len(sink.received) == 1
    forced = _send(loaded_store, deliverer, force=True)
    assert forced[0].status is DeliveryStatus.SENT and forced[0].sent_at == first[0].sent_at + 3_600_000
    assert len(sink.received) == 2
    # another recipient has not had it yet: only they get it
    both = _send(loaded_store, deliverer, recipients=(OWNER, "second@cv.example.dev"))
    assert [r.status for r in both] == [DeliveryStatus.ALREADY_SENT, DeliveryStatus.SENT]
    assert sink.received[-1].recipients == ["second@cv.example.dev"]


@pytest.mark.slow
def test_smtp_down_then_up_sends_on_the_next_run(loaded_store, sink):
    port = free_port()
    deliverer = _smtp(port)
    with pytest.raises(ReportDeliveryError) as info:
        _send(loaded_store, deliverer)
    assert f"could not reach smtp://127.0.0.1:{port}" in str(info.value)
    assert "CV_ANALYTICS_SMTP_HOST" in str(info.value)
    assert loaded_store.get_report_delivery(WEEK, OWNER) is None  # nothing marked sent
    controller = smtp_server.start(sink, port)
    try:
        assert _send(loaded_store, deliverer)[0].status is DeliveryStatus.SENT
    finally:
        controller.stop()
    assert len(sink.received) == 1 and loaded_store.get_report_delivery(WEEK, OWNER) is not None


@pytest.mark.slow
def test_a_refused_recipient_stays_unsent_while_the_others_get_it(loaded_store, sink, plain_server):
    sink.refuse.add("gone@cv.example.dev")
    with pytest.raises(PartialDeliveryError) as info:
        _send(loaded_store, _smtp(plain_server), recipients=("gone@cv.example.dev", OWNER))
    assert "gone@cv.example.dev" in str(info.value) and "550" in str(info.value)
    assert [(r.recipient, r.status) for r in info.value.results] == [(OWNER, DeliveryStatus.SENT)]
    assert loaded_store.get_report_delivery(WEEK, "gone@cv.example.dev") is None
    assert loaded_store.get_report_delivery(WEEK, OWNER) is not None


@pytest.mark.slow
def test_starttls_and_login_against_a_private_ca(loaded_store, sink, tls_files):
    port = free_port()
    controller = smtp_server.start(
        sink,
        port,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=smtp_server.Authenticator("reports", "s3cret"),
        auth_required=True,
    )
    try:
        settings = smtp_settings(
            {
                "CV_ANALYTICS_SMTP_HOST": "127.0.0.1",
                "CV_ANALYTICS_SMTP_PORT": str(port),
                "CV_ANALYTICS_SMTP_USER": "reports",
                "CV_ANALYTICS_SMTP_PASSWORD": "s3cret",
                "CV_ANALYTICS_SMTP_CA_FILE": str(tls_files.ca),
            }
        )
        assert settings.security is SMTPSecurity.STARTTLS
        _send(loaded_store, SMTPDeliverer(settings))
        wrong = SMTPDeliverer(SMTPSettings(**{**settings.__dict__, "password": "guess"}))
        with pytest.raises(ReportDeliveryError, match="rejected the login for 'reports'.*CV_ANALYTICS_SMTP_PASSWORD"):
            _send(loaded_store, wrong, recipients=("other@cv.example.dev",))
        untrusted = SMTPDeliverer(SMTPSettings(**{**settings.__dict__, "ca_file": None}))
        with pytest.raises(ReportDeliveryError, match="CV_ANALYTICS_SMTP_CA_FILE"):
            _send(loaded_store, untrusted, recipients=("other@cv.example.dev",))
    finally:
        controller.stop()
    [got] = sink.received
    assert got.tls and got.login == "reports"
    assert loaded_store.get_report_delivery(WEEK, "other@cv.example.dev") is None


@pytest.mark.slow
def test_implicit_tls(loaded_store, sink, tls_files):
    port = free_port()
    controller = smtp_server.start(sink, port, ssl_context=tls_files.server_context())
    try:
        settings = SMTPSettings(host="127.0.0.1", port=port, security=SMTPSecurity.TLS, ca_file=str(tls_files.ca))
        _send(loaded_store, SMTPDeliverer(settings))
    finally:
        controller.stop()
    assert sink.received[0].tls


@pytest.mark.slow
def test_starttls_not_offered_is_refused_rather_than_sent_in_the_clear(loaded_store, sink, plain_server):
    deliverer = SMTPDeliverer(SMTPSettings(host="127.0.0.1", port=plain_server, timeout=10))
    with pytest.raises(ReportDeliveryError, match="does not offer STARTTLS; set CV_ANALYTICS_SMTP_SECURITY=tls"):
        _send(loaded_store, deliverer)
    assert sink.received == []


def test_file_delivery_writes_html_text_json_and_eml(loaded_store, tmp_path):
    deliverer = FileDeliverer(tmp_path / "outbox")
    [result] = _send(loaded_store, deliverer)
    assert result.channel == "file"
    names = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert names == [f"cv-analytics-report-{WEEK}.{ext}" for ext in ("eml", "html", "json", "txt")]
    data = json.loads((tmp_path / "outbox" / f"cv-analytics-report-{WEEK}.json").read_text())
    assert data["week"] == WEEK and data["volume"]["queries"] == 11
    eml = email.message_from_bytes(deliverer.written["eml"].read_bytes(), policy=email.policy.default)
    assert eml["To"] == OWNER and eml.get_body(("html",)) is not None
    # writing files is not sending (issue 7, item 11): nothing recorded, written again next time
    assert loaded_store.get_report_delivery(WEEK, OWNER) is None
    assert _send(loaded_store, deliverer)[0].status is DeliveryStatus.SENT


def test_a_file_delivery_never_blocks_the_email(loaded_store, sink, plain_server, tmp_path):
    """Issue 7, item 11: a test run with CV_ANALYTICS_REPORT_CHANNEL=file, then the real send by SMTP."""
    _send(loaded_store, FileDeliverer(tmp_path / "outbox"))
    [result] = _send(loaded_store, _smtp(plain_server))
    assert result.status is DeliveryStatus.SENT and result.channel == "smtp"
    assert len(sink.received) == 1
    assert _send(loaded_store, _smtp(plain_server))[0].status is DeliveryStatus.ALREADY_SENT


def test_smtp_settings_from_the_environment_are_validated():
    base = {"CV_ANALYTICS_SMTP_HOST": "mail.example.dev"}
    assert smtp_settings(base).port == 587
    assert smtp_settings({**base, "CV_ANALYTICS_SMTP_SECURITY": "TLS"}).port == 465
    assert smtp_settings({**base, "CV_ANALYTICS_SMTP_SECURITY": "none"}).port == 25
    for env, message in [
        ({}, "set CV_ANALYTICS_SMTP_HOST"),
        ({**base, "CV_ANALYTICS_SMTP_SECURITY": "ssl"}, "must be starttls, tls or none, not 'ssl'"),
        ({**base, "CV_ANALYTICS_SMTP_PORT": "70000"}, "must be a TCP port"),
        ({**base, "CV_ANALYTICS_SMTP_PORT": "smtp"}, "must be a number"),
        ({**base, "CV_ANALYTICS_SMTP_USER": "me"}, "CV_ANALYTICS_SMTP_PASSWORD is not"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            smtp_settings(env)
    assert "s3cret" not in repr(smtp_settings({**base, "CV_ANALYTICS_SMTP_USER": "me", "CV_ANALYTICS_SMTP_PASSWORD": "s3cret"}))


def test_channel_and_addresses_come_from_the_environment(tmp_path):
    unset = Settings.from_env({}, data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="set CV_ANALYTICS_SMTP_HOST .* or CV_ANALYTICS_REPORT_CHANNEL=file"):
        open_deliverer(unset)
    with pytest.raises(ConfigurationError, match="set SENDER_EMAIL .* and RECIPIENT_EMAIL"):
        addresses(unset)
    smtp = Settings.from_env({"CV_ANALYTICS_SMTP_HOST": "mail.example.dev"}, data_dir=tmp_path)
    assert isinstance(open_deliverer(smtp), SMTPDeliverer)
    files = Settings.from_env({"CV_ANALYTICS_REPORT_CHANNEL": "file"}, data_dir=tmp_path)
    deliverer = open_deliverer(files)
    assert isinstance(deliverer, FileDeliverer) and deliverer.out_dir == tmp_path / "reports" / "outbox"
    with pytest.raises(ConfigurationError, match="is not one of smtp, file, ses"):
        open_deliverer(Settings.from_env({"CV_ANALYTICS_REPORT_CHANNEL": "pigeon"}, data_dir=tmp_path))
    both = Settings.from_env({"SENDER_EMAIL": SENDER, "RECIPIENT_EMAIL": f"{OWNER}, cto@cv.example.dev"})
    assert addresses(both) == (SENDER, (OWNER, "cto@cv.example.dev"))


@pytest.mark.parametrize("recipient", ["owner@cv.example.dev\r\nBcc: spy@evil.example", "not an address", "nobody"])
def test_addresses_that_could_inject_headers_or_are_not_addresses_are_refused(recipient):
    with pytest.raises(ConfigurationError, match="RECIPIENT_EMAIL must be an email address"):
        addresses(Settings.from_env({"SENDER_EMAIL": SENDER, "RECIPIENT_EMAIL": recipient}))
