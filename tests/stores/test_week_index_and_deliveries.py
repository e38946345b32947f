"""The week index and the latest report deliveries, as the dashboard and ``status`` read them, on every backend."""

from __future__ import annotations

from cv_analytics.clock import ManualClock
from cv_analytics.stores.base import Store
from cv_analytics.stores.models import ReportDelivery, WeekSummary

from .test_correlation import query, response

WEEK_46_MS = 1_763_164_800_000  # Sat 2025-11-15, ISO week 2025-W46
WEEK_MS = 7 * 86_400_000


def test_weeks_lists_each_week_with_data_oldest_first_with_its_count_and_last_write(store: Store, clock: ManualClock):
    assert store.weeks() == []
    store.record_events([query("a"), response("a"), query("b", ts=WEEK_46_MS + 1000)])
    first_write = int(clock.now() * 1000)
    clock.advance(60)
    store.record_events([query("c", ts=WEEK_46_MS + 2 * WEEK_MS), response("c", ts=WEEK_46_MS + 2 * WEEK_MS + 200)])
    later_write = int(clock.now() * 1000)
    clock.advance(120)
    store.sweep_orphans(90)  # "b" becomes an unanswered interaction of W46, written now
    swept = int(clock.now() * 1000)

    assert store.weeks() == [WeekSummary("2025-W46", 2, swept), WeekSummary("2025-W48", 1, later_write)]
    assert first_write < later_write < swept


def test_recent_report_deliveries_newest_first_and_bounded(store: Store):
    assert store.recent_report_deliveries() == []
    for n, week in enumerate(["2025-W45", "2025-W47", "2025-W46"]):
        store.record_report_delivery(ReportDelivery(week, "owner@example.com", "smtp", 1_000 + n))
    store.record_report_delivery(ReportDelivery("2025-W47", "other@example.com", "ses", 5_000))

    latest = store.recent_report_deliveries(limit=2)
    assert latest == [
        ReportDelivery("2025-W47", "other@example.com", "ses", 5_000),
        ReportDelivery("2025-W46", "owner@example.com", "smtp", 1_002),
    ]
    assert len(store.recent_report_deliveries(limit=10)) == 4
