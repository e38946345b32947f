"""Report figures against hand-computed expectations (see dataset.py), on both implementations.

Every expectation below was worked out by hand from dataset.week_events(); the
comments say how.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.events import parse_event
from cv_analytics.reporting.builder import build_report, compute_trends, percentile
from cv_analytics.skills import DEFAULT_CATALOG_PATH, SKILLS_FILE_VARIABLE, SkillsCatalog
from cv_analytics.reporting.synthetic import synthetic_week
from cv_analytics.insights import GenericInsights
from cv_analytics.insights.model import SkillTally
from cv_analytics.insights.sqlite import SQLiteInsights
from cv_analytics.stores.models import InteractionStatus
from cv_analytics.stores.sqlite import MIGRATIONS, SQLiteStore, interaction_row
from cv_analytics.wiring import insights_for

from . import dataset
from .dataset import CATALOG, PREVIOUS_WEEK, WEEK


@pytest.fixture(params=["sql", "generic"])
def report(request, loaded_store: SQLiteStore):
    source = SQLiteInsights(loaded_store) if request.param == "sql" else GenericInsights(loaded_store)
    return build_report(source, WEEK, catalog=CATALOG, clock=loaded_store.clock)


def test_volume_counts_queries_sessions_and_correlation(report):
    v = report.volume
    # c1-c7, c10-c12 answered; c8 unanswered; c9 is a response without query
    assert (v.answered, v.unanswered, v.orphan_responses, v.interactions) == (10, 1, 1, 12)
    assert v.queries == 11
    assert v.correlation_rate == pytest.approx(10 / 11, abs=1e-4)
    assert v.meets_correlation_target is False
    # s1..s4 among queries; the orphan's s5 is not a query's, the older shape has none
    assert v.sessions == 4


def test_volume_by_day_and_hour_in_utc_counts_only_queries(report):
    v = report.volume
    assert [d.queries for d in v.by_day] == [2, 2, 2, 2, 1, 0, 2]  # Saturday had only the orphan response
    assert [d.date for d in v.by_day][0] == dt.date(2026, 11, 16)
    hours = {h.hour: h.queries for h in v.by_hour if h.queries}
    # c10 at Sunday 23:59:59.999 stays in this week and in hour 23
    assert hours == {8: 2, 9: 3, 10: 2, 14: 2, 17: 1, 23: 1}
    assert (v.busiest_day, v.busiest_hour) == ("Mon", 9)


def test_match_quality_merges_both_event_shapes(report):
    m = report.match
    # full: c1 (0.95), c7 (0.80, exactly the threshold); partial: c3 (0.55), c4 (older shape,
    # "partial"), c11 (0.70), c12 (0.60); none: c2, c5 (older shape, "none"), c6, c10
    assert (m.full, m.partial, m.none, m.unknown) == (2, 4, 4, 0)
    assert m.full_rate == 0.2
    # scores 95, 30, 55, 62, 10, 10, 80, 40, 70, 60 in buckets of ten
    assert [b.queries for b in m.histogram] == [0, 2, 0, 1, 1, 1, 2, 1, 1, 1]
    assert (m.full_threshold, m.partial_threshold, m.low_match_score) == (0.8, 0.5, 60.0)


def test_top_skills_resolve_aliases_and_fall_back_to_sources(report):
    skills = {s.skill: (s.queries, s.from_query, s.from_sources, s.full, s.partial, s.none) for s in report.top_skills}
    assert skills == {
        "Kubernetes": (3, 3, 0, 0, 2, 1),  # "k8s" twice, "Kubernetes" once
        "Python": (2, 2, 1, 1, 1, 0),  # c4 (older shape), c7
        "TypeScript": (2, 2, 2, 2, 0, 0),  # "TypeScript" and "TS"; Node.js in c1's sources is not asked
        "Go": (1, 0, 1, 0, 1, 0),  # c11 names no skill: its sourcesUsed stands in
        "Rust": (1, 1, 0, 0, 0, 1),
        "Terraform": (1, 1, 0, 0, 0, 0),  # unanswered: no match either way
    }
    assert [s.skill for s in report.top_skills] == ["Kubernetes", "Python", "TypeScript", "Go", "Rust", "Terraform"]
    # what full/partial/none leave: Terraform's one query (c8) was never answered
    assert {s.skill: s.unjudged for s in report.top_skills} == {
        "Kubernetes": 0, "Python": 0, "TypeScript": 0, "Go": 0, "Rust": 0, "Terraform": 1
    }
    assert report.top_skills[0].share == pytest.approx(3 / 11, abs=1e-4)


def test_trends_compare_with_the_previous_week_and_ignore_small_moves(report):
    t = report.trends
    assert t.previous_week == PREVIOUS_WEEK
    # Kubernetes 0 -> 3: new; Python 5 -> 2: falling; TypeScript 1 -> 2 and Rust 0 -> 1 are too small
    assert [(x.skill, x.previous_queries, x.queries, x.change, x.is_new, x.relative_change) for x in t.rising] == [
        ("Kubernetes", 0, 3, 3, True, None)
    ]
    assert [(x.skill, x.previous_queries, x.queries, x.change, x.relative_change) for x in t.falling] == [
        ("Python", 5, 2, -3, -0.6)
    ]


def test_gaps_group_no_and_low_matches_by_skill_or_term(report):
    g = report.gaps
    # no match: c2, c5, c6, c10; low (partial below 60): c3; c12 scores exactly 60: not low
    assert (g.queries, g.no_match, g.low_match) == (5, 4, 1)
    def rows(groups):
        return [(x.kind, x.key, x.queries, x.no_match, x.low_match, x.matched, x.examples) for x in groups]

    # missing: nothing about Rust (c5, none) or zig (c6, none) matched even partly
    assert rows(g.missing) == [
        ("skill", "Rust", 1, 1, 0, 0, ["Do you know Rust?"]),
        ("term", "zig", 1, 1, 0, 0, ["Tell me about Zig"]),  # no catalog skill: grouped by its term
    ]
    # weak: Kubernetes gaps c2 (none) and c3 (low, 55), but c3 and c12 (60) matched partly: 2 matched
    assert rows(g.weak) == [
        ("skill", "Kubernetes", 2, 1, 1, 2, ["Kubernetes in production?", "And k8s?"]),  # latest first
    ]
    assert g.ungrouped == 1  # "hello": nothing to group it by


def test_performance_percentiles_are_nearest_rank_over_all_responses(report):
    p = report.performance
    # total times of the nine current-shape responses (the orphan's included), sorted:
    # 100 120 150 180 200 220 250 300 400 -> p50 = 5th, p95 = p99 = 9th
    assert (p.total_time.samples, p.total_time.p50, p.total_time.p95, p.total_time.p99) == (9, 200, 400, 400)
    assert (p.llm_time.p50, p.llm_time.p95) == (150, 300)
    assert (p.retrieval_time.p50, p.retrieval_time.p99) == (40, 80)
    assert (p.cache_hits, p.cache_lookups) == (3, 9)
    assert p.cache_hit_rate == pytest.approx(1 / 3, abs=1e-4)


def test_action_items_fold_a_rising_gap_into_one_item(report):
    # Kubernetes: 2 gap queries (one none, one weak) -> add it; it is also rising (0 -> 3): one item,
    # ranked by the larger count; Rust and zig have one query each: not enough; 11 queries are
    # too few to judge the pipeline
    # the CV matched two Kubernetes queries partly: strengthen it, not add it
    assert [(a.rank, a.kind, a.skill, a.queries, a.ranked_by) for a in report.actions] == [
        (1, "strengthen_skill", "Kubernetes", 3, "more than in 2026-W46")
    ]
    assert report.actions[0].detail == (
        "2 queries about Kubernetes got no match (1) or a weak one (1) (the CV matched 2 queries about it at "
        'least partly), e.g. "Kubernetes in production?" It is rising: 0 → 3 (new this week).'
    )


def test_sql_and_generic_aggregations_agree_on_a_busy_synthetic_week(store: SQLiteStore):
    catalog = SkillsCatalog.load(DEFAULT_CATALOG_PATH)  # the packaged catalog, aliases and all
    store.write_interactions(list(synthetic_week(WEEK, 3000, seed=3)))
    store.write_interactions(list(synthetic_week(PREVIOUS_WEEK, 1000, seed=4)))
    sql = SQLiteInsights(store).week_insights(WEEK, catalog, max_gap_groups=50, max_examples=3)
    generic = GenericInsights(store).week_insights(WEEK, catalog, max_gap_groups=50, max_examples=3)
    assert sql == generic
    assert sql.activity.queries > 2900 and len(sql.gaps) >= 5 and len(sql.skills) >= 10
    assert SQLiteInsights(store).skill_tallies(PREVIOUS_WEEK, catalog) == GenericInsights(store).skill_tallies(PREVIOUS_WEEK, catalog)


def test_an_interaction_completed_late_moves_its_skills_to_the_querys_week(store: SQLiteStore, clock: ManualClock):
    # The response arrives on Monday of W47, its query (sent Sunday of W46) only after the sweep.
    clock.set(dt.datetime(2026, 11, 16, 1, 0, tzinfo=dt.UTC).timestamp())
    q = dataset.query("late", dataset.ms(15, 23, 59), "Any Rust?", "s9")
    r = dataset.response("late", dataset.ms(16, 0, 5), "s9", 0.2, [], (100, 80, 10, False))
    store.record_events([parse_event(r)])
    clock.advance(3600)
    store.sweep_orphans(900)
    assert store.get_interaction("late").week == WEEK
    store.record_events([parse_event(q)])
    moved = store.get_interaction("late")
    assert (moved.status, moved.week) == (InteractionStatus.ANSWERED, PREVIOUS_WEEK)
    for week in (WEEK, PREVIOUS_WEEK):
        assert SQLiteInsights(store).week_insights(week, CATALOG) == GenericInsights(store).week_insights(week, CATALOG)
    assert [g.key for g in SQLiteInsights(store).week_insights(PREVIOUS_WEEK, CATALOG).gaps] == ["Rust"]
    assert SQLiteInsights(store).week_insights(WEEK, CATALOG).activity.interactions == 0


def test_editing_the_catalog_re_resolves_the_week_on_the_next_report(loaded_store: SQLiteStore):
    before = {s.skill for s in SQLiteInsights(loaded_store).skill_tallies(WEEK, CATALOG)}
    assert "Zig" not in before
    edited = SkillsCatalog.from_mapping(
        {"skills": [*({"name": s} for s in CATALOG.skills if s != "Kubernetes"), {"name": "Zig"}]}
    )
    report = build_report(insights_for(loaded_store), WEEK, catalog=edited)
    names = {s.skill for s in report.top_skills}
    assert "Zig" in names and "Kubernetes" not in names  # "k8s" is no alias any more
    assert SQLiteInsights(loaded_store).week_insights(WEEK, edited) == GenericInsights(loaded_store).week_insights(WEEK, edited)
    # "k8s" and "Kubernetes" are now plain terms; Zig has become a skill
    assert [(g.kind, g.key) for g in [*report.gaps.missing, *report.gaps.weak]] == [
        ("skill", "Rust"), ("skill", "Zig"), ("term", "k8s"), ("term", "kubernetes")
    ]


def test_a_broken_catalog_file_does_not_stop_interactions_being_recorded(tmp_path, clock, monkeypatch):
    bad = tmp_path / "skills.yaml"
    bad.write_text("skills: [ {name: Go, aliases: [golang]}, {name: Golang, aliases: [golang]} ]")
    monkeypatch.setenv(SKILLS_FILE_VARIABLE, str(bad))
    store = SQLiteStore(tmp_path / "store.db", clock=clock)  # the store never loads the catalog: writes only mark weeks stale
    dataset.load(store, clock)
    assert store.counts().total_interactions == 18
    state = dict(store.connection().execute("SELECT week, fingerprint FROM interaction_terms_state"))
    assert state == {WEEK: "*", PREVIOUS_WEEK: "*"}  # nothing resolved yet: the report (or the worker) does it
    (pending,) = store.connection().execute("SELECT COUNT(*) FROM interaction_terms_pending").fetchone()
    assert pending == 18
    report = build_report(insights_for(store), WEEK, catalog=CATALOG)
    assert report.top_skills[0].skill == "Kubernetes"
    store.close()


def test_a_database_from_before_the_report_migration_is_resolved_on_first_report(tmp_path, clock):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    clock.set(dt.datetime(2026, 11, 23, tzinfo=dt.UTC).timestamp())
    scratch = SQLiteStore(tmp_path / "scratch.db", clock=clock)
    dataset.load(scratch, clock)
    old_store_rows = [interaction_row(i) for i in scratch.iter_interactions()]
    expected = SQLiteInsights(scratch).week_insights(WEEK, CATALOG)
    scratch.close()
    conn.executemany(f"INSERT INTO interactions VALUES ({', '.join('?' * len(old_store_rows[0]))})", old_store_rows)
    conn.commit()
    conn.close()
    store = SQLiteStore(path, clock=clock)
    assert store.schema_version == len(MIGRATIONS)
    assert SQLiteInsights(store).week_insights(WEEK, CATALOG) == expected
    store.close()


def test_percentile_is_nearest_rank_on_a_weighted_distribution():
    assert percentile([], 50) is None
    assert percentile([(7.0, 1)], 99) == 7.0
    # 100 samples: 90 at 10 ms, 9 at 20 ms, 1 at 500 ms
    dist = [(10.0, 90), (20.0, 9), (500.0, 1)]
    assert [percentile(dist, p) for p in (50, 90, 95, 99, 100)] == [10.0, 10.0, 20.0, 20.0, 500.0]


def test_small_moves_in_a_busy_week_are_not_trends():
    def tallies(**counts: int) -> list[SkillTally]:
        return [SkillTally(skill, n, n, 0, n, 0, 0) for skill, n in counts.items()]

    trends = compute_trends(
        PREVIOUS_WEEK,
        tallies(PostgreSQL=61, React=130, Rust=4, Zig=2, Elm=3),
        tallies(PostgreSQL=63, React=97, Rust=0, Zig=0, Scala=4),
    )
    # PostgreSQL -2 is 3%: noise; React +33 is 34%; Rust is new with 4; Zig is new with too few;
    # Elm is new with exactly the minimum; Scala vanished from 4
    assert [(t.skill, t.change, t.is_new) for t in trends.rising] == [("React", 33, False), ("Rust", 4, True), ("Elm", 3, True)]
    assert [(t.skill, t.change, t.relative_change) for t in trends.falling] == [("Scala", -4, -1.0)]


def test_a_rising_skill_the_cv_covers_well_gets_a_trend_item_not_its_few_weak_answers():
    from cv_analytics.reporting.builder import rank_actions
    from cv_analytics.reporting.model import GapGroup, Gaps, Trend, Trends, Volume

    volume = Volume.model_construct(
        queries=200, unanswered=4, orphan_responses=1, correlation_rate=0.98, correlation_target=0.99,
        meets_correlation_target=False,
    )  # fmt: skip
    skills = [SkillTally("AWS", 34, 34, 0, 26, 8, 0), SkillTally("Rust", 14, 14, 0, 0, 0, 14)]
    trends = Trends(
        previous_week=PREVIOUS_WEEK, min_queries=3, min_change=2, min_relative_change=0.2,
        rising=[Trend(skill="AWS", queries=34, previous_queries=16, change=18, relative_change=1.125, is_new=False),
                Trend(skill="Rust", queries=14, previous_queries=7, change=7, relative_change=1.0, is_new=False)],
        falling=[],
    )  # fmt: skip
    gaps = Gaps(
        queries=19, no_match=14, low_match=5, ungrouped=0,
        missing=[GapGroup(kind="skill", key="Rust", queries=14, no_match=14, low_match=0, matched=0, examples=["Rust?"])],
        weak=[GapGroup(kind="skill", key="AWS", queries=5, no_match=0, low_match=5, matched=34, examples=["AWS?"])],
    )  # fmt: skip
    actions = rank_actions(volume, skills, trends, gaps)
    assert [(a.kind, a.skill, a.queries) for a in actions] == [
        ("feature_skill", "AWS", 18),  # 26 of 34 fully matched: the rise is the news
        ("add_skill", "Rust", 14),  # answered by nothing: the gap is the news, and it is rising too
        ("check_pipeline", None, 5),  # 98% of 200 queries correlated: below target
    ]
    assert actions[1].detail.endswith("It is rising: 7 → 14 (7 more than in 2026-W46).")


def test_skills_are_resolved_off_the_write_path_each_interaction_once(store: SQLiteStore, clock: ManualClock):
    """Writes only queue their ids; resolve_pending (the worker's periodic task) resolves each once,
    a report finds nothing left, and what is written later is resolved alone."""
    dataset.load(store, clock)
    sql = SQLiteInsights(store)
    conn = store.connection()
    (terms,) = conn.execute("SELECT COUNT(*) FROM interaction_terms").fetchone()
    assert terms == 0  # nothing derived on the write path
    assert sql.resolve_pending(CATALOG, limit=5) == 5
    assert sql.resolve_pending(CATALOG) == 13
    assert sql.resolve_pending(CATALOG) == 0
    assert conn.execute("SELECT COUNT(*) FROM interaction_terms_pending").fetchone() == (0,)
    assert sql.week_insights(WEEK, CATALOG) == GenericInsights(store).week_insights(WEEK, CATALOG)
    # one more interaction in WEEK: only it is resolved, and the figures still agree
    q = dataset.query("extra", dataset.ms(18, 10, 0), "Do you know Rust?", "s9")
    r = dataset.response("extra", dataset.ms(18, 10, 1), "s9", 0.1, [], (100, 80, 10, False))
    store.record_events([parse_event(q), parse_event(r)])
    assert conn.execute("SELECT correlation_id FROM interaction_terms_pending").fetchall() == [("extra",)]
    assert sql.week_insights(WEEK, CATALOG) == GenericInsights(store).week_insights(WEEK, CATALOG)
    assert conn.execute("SELECT COUNT(*) FROM interaction_terms_pending").fetchone() == (0,)


def test_the_demo_traffic_never_names_one_skill_twice_in_a_question():
    import random

    from cv_analytics.entrypoints.demo import generate_traffic

    questions = generate_traffic(3000, dt.datetime(2026, 11, 25, tzinfo=dt.UTC), random.Random(1))
    pairs = [q for q in questions if " and " in q.query]
    assert len(pairs) > 200
    for q in pairs:
        first, second = q.query.rsplit("?", 1)[0].split(" with ", 1)[1].split(" and ")
        assert first != second and len(set(q.skills)) == 2, q.query


def test_the_synthetic_week_never_names_one_skill_twice_in_a_question():
    catalog = SkillsCatalog.load(DEFAULT_CATALOG_PATH)
    for i in synthetic_week(WEEK, 2000, seed=5):
        if i.query is not None:
            named = catalog.skills_in_text(i.query)
            words = i.query.replace("?", " ").replace(".", " ").split()
            assert len(named) <= 1 and len(words) == len(set(words)), i.query
