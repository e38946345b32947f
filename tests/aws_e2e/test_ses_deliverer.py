"""The SES deliverer on its own: chosen by configuration, and SES's failures turned into advice."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from cv_analytics.wiring import Settings
from cv_analytics.exceptions import ReportDeliveryError
from cv_analytics.reporting.builder import build_report
from cv_analytics.reporting.delivery import OutgoingReport, build_message
from cv_analytics.wiring.reporting import open_deliverer
from cv_analytics.reporting.render import render
from cv_analytics.reporting.ses import SESDeliverer
from cv_analytics.stores.sqlite import SQLiteStore
from cv_analytics.wiring import insights_for
from cv_analytics.skills import load_catalog
from cv_analytics.wiring.reporting import ses_client, ses_deliverer

from .conftest import OWNER, SENDER, Deployment, parse_email

pytestmark = pytest.mark.slow


@pytest.fixture
def outgoing(tmp_path: pathlib.Path) -> OutgoingReport:
    """The report of an empty week, built as the reporter builds it."""
    store = SQLiteStore(tmp_path / "store.db")
    rendered = render(build_report(insights_for(store), "2026-W47", catalog=load_catalog()))
    store.close()
    sender = SENDER
    message = build_message(
        rendered, sender=sender, recipients=[OWNER], when=dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)
    )
    return OutgoingReport(rendered, sender, (OWNER,), message)


def test_the_ses_channel_is_chosen_by_configuration_with_its_own_region(aws: Deployment) -> None:
    settings = Settings.from_env(
        {**aws.env, "CV_ANALYTICS_REPORT_CHANNEL": "ses", "CV_ANALYTICS_SES_REGION": "eu-west-1"}
    )

    deliverer = open_deliverer(settings)

    assert isinstance(deliverer, SESDeliverer) and deliverer.channel == "ses"
    assert deliverer.client.meta.region_name == "eu-west-1" and deliverer.describe() == "Amazon SES (eu-west-1)"


def test_the_deliverer_sends_the_mime_bytes_it_is_given(aws: Deployment, outgoing: OutgoingReport) -> None:
    deliverer = ses_deliverer(aws.settings)

    deliverer.deliver(outgoing)

    [sent] = aws.sent_emails()
    assert deliverer.message_ids == {OWNER: sent["id"]}
    assert sent["raw_data"].encode() == outgoing.mime, "byte for byte the message the SMTP path would send"
    assert parse_email(sent["raw_data"]).get_content_type() == "multipart/alternative"


def test_ses_out_of_reach_is_a_delivery_error_that_will_be_retried(
    aws: Deployment, closed_port_url: str, outgoing: OutgoingReport
) -> None:
    deliverer = ses_deliverer(Settings.from_env({**aws.env, "AWS_ENDPOINT_URL": closed_port_url}))

    with pytest.raises(ReportDeliveryError, match=r"could not reach Amazon SES \(us-east-1\).*retried on the next run"):
        deliverer.deliver(outgoing)


def test_aws_endpoint_url_ses_points_ses_alone_elsewhere(
    aws: Deployment, closed_port_url: str, outgoing: OutgoingReport
) -> None:
    # boto3's service-specific endpoint: passing AWS_ENDPOINT_URL to boto3 explicitly used to override it
    settings = Settings.from_env({**aws.env, "AWS_ENDPOINT_URL_SES": closed_port_url})

    with pytest.raises(ReportDeliveryError, match=r"could not reach Amazon SES"):
        ses_deliverer(settings).deliver(outgoing)
    assert ses_client(settings).meta.endpoint_url == closed_port_url
    ses_deliverer(Settings.from_env(aws.env)).deliver(outgoing)  # without it, SES is moto's as before
    assert len(aws.sent_emails()) == 1
