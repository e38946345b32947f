"""Settings -> the report's delivery: channel, SMTP settings, SES, addresses, from the environment.

The reporting part takes these as plain objects; only this module reads the
``CV_ANALYTICS_SMTP_*``, ``CV_ANALYTICS_REPORT_*``, ``CV_ANALYTICS_SES_*``,
``SENDER_EMAIL`` and ``RECIPIENT_EMAIL`` variables.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import ConfigurationError
from ..reporting.delivery import Deliverer, FileDeliverer, check_address
from ..reporting.smtp import DEFAULT_PORTS, SMTPSecurity, SMTPSettings
from .settings import PREFIX, Settings

SES_REGION_VARIABLE = f"{PREFIX}SES_REGION"
SES_CONFIGURATION_SET_VARIABLE = f"{PREFIX}SES_CONFIGURATION_SET"
REPORT_CHANNEL_VARIABLE = f"{PREFIX}REPORT_CHANNEL"


def smtp_settings(env: Mapping[str, str]) -> SMTPSettings:
    """Read the ``CV_ANALYTICS_SMTP_*`` variables; :class:`ConfigurationError` names any bad one."""
    host = (env.get(f"{PREFIX}SMTP_HOST") or "").strip()
    if not host:
        raise ConfigurationError(f"set {PREFIX}SMTP_HOST to the SMTP server's name to send the report by email")
    raw_security = (env.get(f"{PREFIX}SMTP_SECURITY") or SMTPSecurity.STARTTLS.value).strip().lower()
    try:
        security = SMTPSecurity(raw_security)
    except ValueError:
        raise ConfigurationError(
            f"{PREFIX}SMTP_SECURITY must be starttls, tls or none, not {raw_security!r}"
        ) from None
    port_number = _number(env, f"{PREFIX}SMTP_PORT", DEFAULT_PORTS[security])
    port = int(port_number)
    if port != port_number or not 0 < port < 65536:
        raise ConfigurationError(f"{PREFIX}SMTP_PORT must be a TCP port (1-65535), not {port}")
    username = env.get(f"{PREFIX}SMTP_USER") or None
    password = env.get(f"{PREFIX}SMTP_PASSWORD") or None
    if username and password is None:
        raise ConfigurationError(f"{PREFIX}SMTP_USER is set but {PREFIX}SMTP_PASSWORD is not")
    return SMTPSettings(
        host=host,
        port=port,
        security=security,
        username=username,
        password=password,
        timeout=_number(env, f"{PREFIX}SMTP_TIMEOUT", 30.0),
        ca_file=env.get(f"{PREFIX}SMTP_CA_FILE") or None,
    )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


def ses_deliverer(settings: Settings, **kwargs: Any) -> Deliverer:
    """The SES deliverer the environment describes (region: ``CV_ANALYTICS_SES_REGION``, else
    ``AWS_REGION``; ``CV_ANALYTICS_SES_CONFIGURATION_SET``); ``kwargs`` go to its constructor."""
    from ..reporting.ses import SESDeliverer

    env = settings.env
    kwargs.setdefault("region", env.get(SES_REGION_VARIABLE) or settings.aws_region)
    kwargs.setdefault("endpoint_url", settings.ses_endpoint_url or settings.aws_endpoint_url)
    kwargs.setdefault("configuration_set", env.get(SES_CONFIGURATION_SET_VARIABLE) or None)
    return SESDeliverer(**kwargs)


def ses_client(settings: Settings, *, request_counter: Any = None) -> Any:
    """An SES client for the region the settings name (shared by a Lambda container's invocations)."""
    from ..reporting.ses import make_ses_client

    return make_ses_client(
        region=settings.env.get(SES_REGION_VARIABLE) or settings.aws_region,
        endpoint_url=settings.ses_endpoint_url or settings.aws_endpoint_url,
        request_counter=request_counter,
    )


def report_channel(settings: Settings, default: str = "") -> str:
    """``CV_ANALYTICS_REPORT_CHANNEL`` (``smtp``, ``ses``, ``file``), lower-cased; ``default`` when unset."""
    return (settings.env.get(REPORT_CHANNEL_VARIABLE) or default).strip().lower()


def _smtp(settings: Settings) -> Deliverer:
    from ..reporting.smtp import SMTPDeliverer

    return SMTPDeliverer(smtp_settings(settings.env))


def _file(settings: Settings) -> Deliverer:
    outbox = settings.env.get(f"{PREFIX}REPORT_OUTBOX")
    return FileDeliverer(pathlib.Path(outbox) if outbox else settings.reports_dir / "outbox")


def _ses(settings: Settings) -> Deliverer:
    try:
        from ..reporting import ses  # imports boto3, which the SES channel needs
    except ImportError as exc:
        raise ConfigurationError(
            f"the ses report channel is not available in this installation ({exc}); use smtp or file"
        ) from exc
    del ses
    return ses_deliverer(settings)


#: Channel name -> factory. An SES deliverer registers as ``ses`` (module ``reporting/ses.py``).
CHANNELS: dict[str, Callable[[Settings], Deliverer]] = {"smtp": _smtp, "file": _file, "ses": _ses}


def open_deliverer(settings: Settings) -> Deliverer:
    """The deliverer ``CV_ANALYTICS_REPORT_CHANNEL`` names; by default SMTP when ``CV_ANALYTICS_SMTP_HOST`` is set."""
    env = settings.env
    channel = report_channel(settings)
    if not channel:
        if not env.get(f"{PREFIX}SMTP_HOST"):
            raise ConfigurationError(
                f"no way to send the report: set {PREFIX}SMTP_HOST (and {PREFIX}SMTP_PORT, _USER, _PASSWORD, "
                f"_SECURITY=starttls|tls|none) to email it, or {PREFIX}REPORT_CHANNEL=file to write it to "
                f"{settings.reports_dir / 'outbox'}"
            )
        channel = "smtp"
    if channel not in CHANNELS:
        raise ConfigurationError(f"{PREFIX}REPORT_CHANNEL={channel!r} is not one of {', '.join(CHANNELS)}")
    return CHANNELS[channel](settings)


def addresses(settings: Settings) -> tuple[str, tuple[str, ...]]:
    """(sender, recipients) from SENDER_EMAIL and RECIPIENT_EMAIL (comma-separated for several)."""
    if not settings.sender_email or not settings.recipient_email:
        raise ConfigurationError(
            "set SENDER_EMAIL (the From address) and RECIPIENT_EMAIL (who gets the report; "
            "separate several with commas) to send the report"
        )
    sender = check_address(settings.sender_email, "SENDER_EMAIL")
    recipients = tuple(
        check_address(r, "RECIPIENT_EMAIL") for r in settings.recipient_email.split(",") if r.strip()
    )
    if not recipients:
        raise ConfigurationError("RECIPIENT_EMAIL names no address")
    return sender, recipients
