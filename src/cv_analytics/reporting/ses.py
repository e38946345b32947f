"""Email delivery through Amazon SES: ``SendRawEmail`` with the MIME message the SMTP path sends.

The report is rendered and built into a MIME message once
(:func:`~cv_analytics.reporting.delivery.build_message`); this deliverer hands
those exact bytes to SES, so a report mailed by SES and one mailed by SMTP are
the same multipart/alternative message.

Settings (environment):

=======================================  ===========================================================
``SENDER_EMAIL`` / ``RECIPIENT_EMAIL``   From and To, as for SMTP (read by the caller)
``CV_ANALYTICS_SES_REGION``              SES region, when it differs from ``AWS_REGION`` (identities
                                         are verified per region)
``CV_ANALYTICS_SES_CONFIGURATION_SET``   optional configuration set (event publishing, dedicated IPs)
``AWS_ENDPOINT_URL``                     a local emulator (moto), as for the other AWS clients
=======================================  ===========================================================

Every SES error becomes a :class:`~cv_analytics.exceptions.ReportDeliveryError`
whose message says what to do: above all, that an unverified sender (or, in the
SES sandbox, recipient) must be verified first
(https://docs.aws.amazon.com/ses/latest/dg/creating-identities.html). Nothing
is recorded as sent then, so the next run retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import ReportDeliveryError
from .delivery import OutgoingNotice, OutgoingReport

if TYPE_CHECKING:
    import boto3

    from ..boto.metering import RequestCounter

__all__ = ["SESDeliverer"]

SES_REGION_VARIABLE = "CV_ANALYTICS_SES_REGION"
SES_CONFIGURATION_SET_VARIABLE = "CV_ANALYTICS_SES_CONFIGURATION_SET"

#: Error codes after which the same send can succeed later without anyone doing anything.
_TRANSIENT_CODES = frozenset({"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure"})


class SESDeliverer:
    """Sends the report's MIME bytes with SES ``SendRawEmail``, one call per delivery.

    ``message_ids`` maps each recipient to the SES message id of its last
    delivery by this deliverer (for logs and the Lambda handler's answer).
    Pass ``client`` to reuse a boto3 SES client (a Lambda container keeps one
    across invocations); otherwise one is made from ``region``, ``endpoint_url``
    and ``session`` with the same timeouts and retries as the other AWS clients.
    """

    channel = "ses"
    counts_as_sent = True

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        configuration_set: str | None = None,
        client: Any = None,
        request_counter: RequestCounter | None = None,
    ) -> None:
        if client is None:
            client = make_ses_client(
                region=region, endpoint_url=endpoint_url, session=session, request_counter=request_counter
            )
        self.client = client
        self.region = region or str(getattr(getattr(client, "meta", None), "region_name", "") or "") or None
        self.configuration_set = configuration_set or None
        self.message_ids: dict[str, str] = {}

    def describe(self) -> str:
        return f"Amazon SES ({self.region or 'default region'})"

    def deliver(self, outgoing: OutgoingReport | OutgoingNotice) -> None:
        """Send ``outgoing.mime``; raises :class:`ReportDeliveryError` with the remedy when SES refuses."""
        from ..boto.clients import BotoCoreError, ClientError, describe

        request: dict[str, Any] = {
            # Source and Destinations are the envelope; the From/To headers inside the MIME are what readers see.
            "Source": outgoing.sender,
            "Destinations": list(outgoing.recipients),
            "RawMessage": {"Data": outgoing.mime},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_raw_email(**request)
        except ClientError as exc:
            raise ReportDeliveryError(self._explain(exc, outgoing)) from exc
        except BotoCoreError as exc:
            raise ReportDeliveryError(
                f"could not reach {self.describe()} to send {outgoing.description}: {describe(exc)}; "
                "it was not marked sent and will be retried on the next run"
            ) from exc
        message_id = str(response.get("MessageId", ""))
        for recipient in outgoing.recipients:
            self.message_ids[recipient] = message_id

    # -- what an SES error means ------------------------------------------------------

    def _explain(self, exc: Any, outgoing: OutgoingReport | OutgoingNotice) -> str:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        text = str(error.get("Message") or code)
        where = self.describe()
        region = self.region or "<region>"
        what = f"{where} refused {outgoing.description} ({code}: {text})"
        lowered = text.lower()
        if code == "MessageRejected" and ("not verified" in lowered or "authority" in lowered):
            sender = _address(outgoing.sender)
            return (
                f"{what}. Verify the sender in this region: `aws ses verify-email-identity --email-address "
                f"{sender} --region {region}` and open the link AWS emails to it, or verify its domain "
                f"(`aws ses verify-domain-identity --domain {sender.rpartition('@')[2]} --region {region}` and "
                "publish the DNS records it prints). While the account is in the SES sandbox every recipient must "
                "be verified as well (or request production access in the SES console). Set "
                f"{SES_REGION_VARIABLE} if the identity is verified in another region"
            )
        if code in ("MailFromDomainNotVerifiedException", "MailFromDomainNotVerified"):
            return (
                f"{what}. The custom MAIL FROM domain of the sender's identity is not verified: fix its MX and "
                "SPF DNS records, or remove the custom MAIL FROM setting"
            )
        if code in ("ConfigurationSetDoesNotExist", "ConfigurationSetDoesNotExistException"):
            return (
                f"{what}. Create the configuration set {self.configuration_set!r} in {region}, or unset "
                f"{SES_CONFIGURATION_SET_VARIABLE}"
            )
        if code in ("AccountSendingPausedException", "ConfigurationSetSendingPausedException"):
            return (
                f"{what}. Sending is paused in {region}: see the reputation page of the SES console, "
                "then resume sending"
            )
        if code in ("AccessDenied", "AccessDeniedException"):
            return (
                f"{what}. Grant ses:SendRawEmail on the sender's identity "
                f"(arn:aws:ses:{region}:<account>:identity/{_address(outgoing.sender)}) to the role that sends the report"
            )
        if code in _TRANSIENT_CODES or "maximum sending rate" in lowered or "quota" in lowered:
            return f"{what}; it was not marked sent and will be retried on the next run"
        return f"{what}; it was not marked sent and will be retried on the next run once the cause is fixed"


def make_ses_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    request_counter: RequestCounter | None = None,
) -> Any:
    """A boto3 SES (v1) client configured as the queue and store clients are (timeouts, standard retries)."""
    # imported here: aws.clients needs boto3, which an embedded install (SMTP or files only) lacks
    from ..boto.clients import client_config, make_client

    return make_client(
        "ses",
        region=region,
        endpoint_url=endpoint_url,
        session=session,
        config=client_config(),
        request_counter=request_counter,
    )


def _address(sender: str) -> str:
    import email.utils

    return email.utils.parseaddr(sender)[1] or sender
