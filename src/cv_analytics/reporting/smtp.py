"""Email delivery over SMTP: STARTTLS, implicit TLS or plain, with optional login.

Settings (environment):

=================================  ==============================================================
``CV_ANALYTICS_SMTP_HOST``         server name (required)
``CV_ANALYTICS_SMTP_PORT``         default 587 for starttls, 465 for tls, 25 for none
``CV_ANALYTICS_SMTP_SECURITY``     ``starttls`` (default), ``tls`` (implicit, "SMTPS") or ``none``
``CV_ANALYTICS_SMTP_USER``         login name; no login when unset
``CV_ANALYTICS_SMTP_PASSWORD``     password for that login
``CV_ANALYTICS_SMTP_TIMEOUT``      seconds per network operation, default 30
``CV_ANALYTICS_SMTP_CA_FILE``      PEM file of CA certificates to trust instead of the system's
=================================  ==============================================================

Certificates are always verified when TLS is used; a private server's CA can
be trusted with ``CV_ANALYTICS_SMTP_CA_FILE``. With ``starttls`` the session
is encrypted before the login is sent; only ``none`` (meant for a trusted relay
such as one on localhost) sends it in the clear.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from enum import Enum

from ..exceptions import ReportDeliveryError
from .delivery import OutgoingNotice, OutgoingReport


class SMTPSecurity(str, Enum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


#: The settings' prefix, named in hints (the wiring reads ``CV_ANALYTICS_SMTP_*`` into :class:`SMTPSettings`).
PREFIX = "CV_ANALYTICS_"
DEFAULT_PORTS = {SMTPSecurity.STARTTLS: 587, SMTPSecurity.TLS: 465, SMTPSecurity.NONE: 25}


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    security: SMTPSecurity = SMTPSecurity.STARTTLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: str | None = None

    @property
    def url(self) -> str:
        scheme = {SMTPSecurity.STARTTLS: "smtp+starttls", SMTPSecurity.TLS: "smtps", SMTPSecurity.NONE: "smtp"}
        return f"{scheme[self.security]}://{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


class SMTPDeliverer:
    """Sends the MIME bytes with one SMTP session per delivery."""

    channel = "smtp"
    counts_as_sent = True

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings

    def describe(self) -> str:
        return self.settings.url

    def deliver(self, outgoing: OutgoingReport | OutgoingNotice) -> None:
        s = self.settings
        where = s.url
        try:
            client: smtplib.SMTP
            if s.security is SMTPSecurity.TLS:
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.tls_context())
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                client.ehlo()
                if s.security is SMTPSecurity.STARTTLS:
                    if not client.has_extn("starttls"):
                        raise ReportDeliveryError(
                            f"{where} does not offer STARTTLS; set {PREFIX}SMTP_SECURITY=tls for implicit TLS "
                            "(usually port 465), or none only for a trusted local relay"
                        )
                    client.starttls(context=s.tls_context())
                    client.ehlo()
                if s.username:
                    client.login(s.username, s.password or "")
                refused = client.sendmail(outgoing.sender, list(outgoing.recipients), outgoing.mime)
            if refused:
                raise ReportDeliveryError(f"{where} refused recipient(s) {_refusals(refused)}")
        except ReportDeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise ReportDeliveryError(
                f"{where} rejected the login for {s.username!r} ({_reply(exc)}); "
                f"check {PREFIX}SMTP_USER and {PREFIX}SMTP_PASSWORD"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ReportDeliveryError(
                f"{where}: {exc}; the server may not allow login on this connection "
                f"(check {PREFIX}SMTP_SECURITY)"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise ReportDeliveryError(f"{where} refused recipient(s) {_refusals(exc.recipients)}") from exc
        except smtplib.SMTPSenderRefused as exc:
            raise ReportDeliveryError(
                f"{where} refused the sender {exc.sender!r} ({_reply(exc)}); check SENDER_EMAIL"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise ReportDeliveryError(f"{where} answered {_reply(exc)}") from exc
        except ssl.SSLError as exc:
            raise ReportDeliveryError(
                f"TLS with {where} failed ({exc.reason or exc}); if the server uses a private CA, "
                f"point {PREFIX}SMTP_CA_FILE at its certificate"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ReportDeliveryError(
                f"could not reach {where}: {exc}; check {PREFIX}SMTP_HOST and {PREFIX}SMTP_PORT "
                "and that the server is up"
            ) from exc


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{who} ({code} {msg.decode(errors='replace')})" for who, (code, msg) in refused.items())
