"""The weekly reporter Lambda on moto: a scheduled event in, last week's report out through SES
(read back from moto and parsed), exactly once per week."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator

import pytest

from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.boto.metering import RequestCounter
from cv_analytics.clock import ManualClock
from cv_analytics.wiring import open_store
from cv_analytics.exceptions import ConfigurationError, ReportDeliveryError

from . import iam
from .conftest import OWNER, SENDER, SENDER_ADDRESS, Deployment, parse_email
from .lambda_poller import LambdaContext

pytestmark = pytest.mark.slow

WEEK = "2026-W47"
#: The schedule's first run after that week: Monday 23 November 2026, 07:00 UTC.
RUN_TIME = "2026-11-23T07:00:00Z"
#: (question, match quality) asked in 2026-W47; TypeScript is the most asked-about skill.
QUESTIONS = [
    ("What is your TypeScript experience?", 0.95),
    ("Have you led a TypeScript migration?", 0.9),
    ("Do you write TypeScript tests?", 0.85),
    ("Kubernetes in production?", 0.3),
    ("Which Kubernetes operators have you written?", 0.55),
    ("Python experience?", 0.7),
]


def scheduled_event(time: str) -> dict:
    """An EventBridge scheduled event as Lambda receives it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/cv-e2e-weekly-report"],
        "detail": {},
    }


def _context() -> LambdaContext:
    return LambdaContext(function_name="cv-e2e-weekly-report", remaining_ms=60_000)


@pytest.fixture
def week_of_traffic(aws: Deployment) -> Iterator[Deployment]:
    """A week of questions logged by the real client and processed by the processor Lambda."""
    client = aws.analytics_client()
    monday = dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC)
    for day, (question, quality) in enumerate(QUESTIONS):
        asked = monday + dt.timedelta(days=day, hours=day)
        cid = client.log_query(question, session_id=f"recruiter-{day % 3}", timestamp=asked)
        client.log_response(
            cid, "An answer.", session_id=f"recruiter-{day % 3}", timestamp=asked + dt.timedelta(seconds=1),
            total_time=900, llm_time=700, retrieval_time=200, cache_hit=False, match_quality=quality,
        )  # fmt: skip
    assert client.flush(timeout=30)
    polls = aws.mapping().drain(handlers.process_analytics)
    assert not [p for p in polls if p.failed]
    yield aws


def _top_skill(html: str) -> str:
    match = re.search(r"Top skills asked about.*?<td width=\"150\"[^>]*>([^<]+)</td>", html, re.DOTALL)
    assert match is not None, "the report has no top skills table"
    return match.group(1).strip()


def test_the_scheduled_run_emails_last_weeks_report_through_ses(week_of_traffic: Deployment) -> None:
    aws = week_of_traffic

    answer = handlers.weekly_report(scheduled_event(RUN_TIME), _context())

    assert (answer["week"], answer["status"], answer["channel"]) == (WEEK, "sent", "ses")
    assert json.loads(json.dumps(answer)) == answer, "the answer is JSON"
    [sent] = aws.sent_emails()
    assert sent["id"] == answer["messageId"] and answer["deliveries"][0]["messageId"] == sent["id"]
    assert SENDER_ADDRESS in sent["source"] and OWNER in sent["destinations"]
    message = parse_email(sent["raw_data"])
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert (message["From"], message["To"], message["X-CV-Analytics-Week"]) == (SENDER, OWNER, WEEK)
    assert message["Subject"].startswith(f"CV analytics {WEEK} ") and "6 recruiter questions" in message["Subject"]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert _top_skill(html) == "TypeScript"
    assert "Kubernetes in production?" in html and "TypeScript" in text
    delivery = open_store(aws.settings).get_report_delivery(WEEK, OWNER)
    assert delivery is not None and delivery.channel == "ses"


def test_a_repeated_run_for_the_same_week_sends_nothing(week_of_traffic: Deployment) -> None:
    aws = week_of_traffic
    event = scheduled_event(RUN_TIME)
    first = handlers.weekly_report(event, _context())

    again = handlers.weekly_report(event, _context())  # EventBridge delivers at least once; Lambda retries

    assert (again["week"], again["status"], again["messageId"]) == (WEEK, "already_sent", None)
    assert again["deliveries"][0]["sentAt"] == first["deliveries"][0]["sentAt"]
    assert len(aws.sent_emails()) == 1


def test_the_week_reported_is_the_one_before_the_events_time_not_the_clocks(week_of_traffic: Deployment) -> None:
    aws = week_of_traffic
    months_later = ManualClock(dt.datetime(2027, 3, 1, tzinfo=dt.UTC).timestamp())
    handlers.configure(env=aws.env, clock=months_later)

    late = handlers.weekly_report(scheduled_event(RUN_TIME), _context())  # delivered, say, after an outage
    manual = handlers.weekly_report({"week": "2026-W46"}, _context())  # `aws lambda invoke --payload '{"week": ...}'`

    assert (late["week"], late["status"]) == (WEEK, "sent")
    assert (manual["week"], manual["status"]) == ("2026-W46", "sent")
    subjects = [parse_email(m["raw_data"])["Subject"] for m in aws.sent_emails()]
    assert subjects[0].startswith(f"CV analytics {WEEK} ") and subjects[1].startswith("CV analytics 2026-W46 ")


def test_an_unverified_sender_fails_records_nothing_and_says_how_to_verify(week_of_traffic: Deployment) -> None:
    aws = week_of_traffic
    stranger = "someone-else@cv.example.dev"
    handlers.configure(env={**aws.env, "SENDER_EMAIL": stranger})

    with pytest.raises(ReportDeliveryError) as failure:
        handlers.weekly_report(scheduled_event(RUN_TIME), _context())

    message = str(failure.value)
    assert f"aws ses verify-email-identity --email-address {stranger} --region us-east-1" in message
    assert "sandbox" in message
    assert open_store(aws.settings).get_report_delivery(WEEK, OWNER) is None
    assert aws.sent_emails() == []

    aws.ses.verify_email_identity(EmailAddress=stranger)
    retried = handlers.weekly_report(scheduled_event(RUN_TIME), _context())  # Lambda's retry, after the fix
    assert retried["status"] == "sent" and len(aws.sent_emails()) == 1


def test_the_reporter_needs_only_what_its_iam_role_grants(week_of_traffic: Deployment, counter: RequestCounter) -> None:
    aws = week_of_traffic
    handlers.configure(env=aws.env, request_counter=counter)

    handlers.weekly_report(scheduled_event(RUN_TIME), _context())
    handlers.weekly_report(scheduled_event(RUN_TIME), _context())

    used = iam.actions_used(counter.snapshot())
    assert {"ses:SendRawEmail", "dynamodb:Query", "dynamodb:PutItem"} <= used
    assert used <= iam.granted_actions("ReporterRole"), (
        f"not granted: {sorted(used - iam.granted_actions('ReporterRole'))}"
    )
    assert counter.calls_to("ses", "SendRawEmail") == 1


def test_a_reporter_without_a_sender_raises_and_logs_what_to_set(aws: Deployment, capsys) -> None:
    handlers.configure(env={k: v for k, v in aws.env.items() if k != "SENDER_EMAIL"})

    with pytest.raises(ConfigurationError, match="set SENDER_EMAIL"):
        handlers.weekly_report(scheduled_event(RUN_TIME), _context())

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line["message"] == "weekly report not delivered"]
    assert (line["level"], line["week"]) == ("ERROR", WEEK) and "SENDER_EMAIL" in line["error"]
    assert aws.sent_emails() == []
