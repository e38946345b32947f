"""What the pages choose and draw: the default week, chart axes and bars."""

from __future__ import annotations

import datetime as dt

import pytest

from cv_analytics.entrypoints.web.dashboard.charts import Datum, horizontal_bars, nice_ticks, vertical_bars
from cv_analytics.entrypoints.web.dashboard.views import default_week, milliseconds
from cv_analytics.stores.models import WeekSummary

WEDNESDAY_W49 = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC).timestamp()


def test_the_default_week_is_the_last_complete_one_when_it_has_data():
    weeks = [WeekSummary("2026-W47", 10, 0), WeekSummary("2026-W48", 5, 0), WeekSummary("2026-W49", 3, 0)]
    assert default_week(weeks, WEDNESDAY_W49) == ("2026-W48", "the last complete week")


def test_otherwise_the_latest_week_with_data_and_the_page_says_so():
    weeks = [WeekSummary("2026-W40", 10, 0), WeekSummary("2026-W49", 3, 0)]
    week, reason = default_week(weeks, WEDNESDAY_W49)
    assert week == "2026-W49"
    assert reason == "the latest week with data (the last complete week, 2026-W48, has none)"


def test_with_no_data_at_all_the_last_complete_week_and_why():
    assert default_week([], WEDNESDAY_W49) == ("2026-W48", "the last complete week (no week has data yet)")


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [(0, [0, 1]), (1, [0, 1]), (7, [0, 2, 4, 6, 8]), (47, [0, 10, 20, 30, 40, 50]), (1299, [0, 500, 1000, 1500])],
)
def test_axis_ticks_are_round_steps_reaching_the_largest_value(maximum, ticks):
    assert nice_ticks(maximum) == ticks


def test_vertical_bars_are_proportional_to_their_values_on_a_shared_baseline():
    chart = vertical_bars("c", "Queries by day", [Datum("Mon", 40, "40", "Mon: 40"), Datum("Tue", 10, "10", "t")], unit="q")
    mon, tue = chart.bars
    assert mon.y + mon.height == pytest.approx(tue.y + tue.height)  # same baseline
    assert mon.height == pytest.approx(4 * tue.height)
    assert [t.text for t in chart.ticks] == ["0", "10", "20", "30", "40"]
    assert chart.description == "Queries by day, in q: Mon: 40; Tue: 10."


def test_horizontal_bars_keep_long_labels_whole_in_the_tooltip_and_short_on_the_axis():
    name = "An extremely long skill name from a producer"
    chart = horizontal_bars("c", "Top skills", [Datum(name, 3, "3", f"{name}: 3")], unit="q")
    (bar,) = chart.bars
    assert bar.label.endswith("…") and len(bar.label) == 24 and bar.datum.tooltip.startswith(name)
    assert not chart.empty and horizontal_bars("e", "E", [], unit="q").empty


def test_milliseconds_print_whole_values_without_decimals():
    assert (milliseconds(None), milliseconds(350.0), milliseconds(1299), milliseconds(12.25)) == ("–", "350 ms", "1,299 ms", "12.2 ms")
