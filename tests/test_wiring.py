"""The wiring: settings from an environment mapping, and one backend per process shared by every queue."""

from __future__ import annotations

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.exceptions import ConfigurationError
from cv_analytics.insights import GenericInsights
from cv_analytics.insights.sqlite import SQLiteInsights
from cv_analytics.queues.presets import ANALYTICS, JOBS_REQUEST, JOBS_RESPONSE
from cv_analytics.stores.memory import MemoryStore
from cv_analytics.wiring import Settings, Wiring, insights_for


def test_one_backend_serves_every_queue_with_the_clock_it_was_given(tmp_path):
    clock = ManualClock()
    with Wiring(Settings.from_env({}, data_dir=tmp_path), clock=clock) as wiring:
        analytics, jobs = wiring.queue(), wiring.queue(JOBS_REQUEST.name)
        assert wiring.queue() is analytics  # opened once
        assert analytics.config.fifo and not jobs.config.fifo
        # the embedded analytics queue keeps CV_ANALYTICS_VISIBILITY_TIMEOUT's default, 30 s, not SQS's 300
        assert analytics.config.visibility_timeout == 30 and ANALYTICS.config.visibility_timeout == 300
        assert jobs.config.visibility_timeout == JOBS_REQUEST.config.visibility_timeout
        analytics.send('{"a": 1}', group_id="g", dedup_id="d")
        [message] = analytics.receive(1, wait_seconds=0)
        clock.advance(31)  # past the visibility timeout, on the injected clock: it comes back
        assert [m.message_id for m in analytics.receive(1, wait_seconds=0)] == [message.message_id]
        assert wiring.store is wiring.store
        assert isinstance(wiring.insights, SQLiteInsights)
    assert (tmp_path / "queues.db").exists() and (tmp_path / "store.db").exists()


def test_insights_are_sql_over_sqlite_and_generic_over_any_other_store():
    assert isinstance(insights_for(MemoryStore(clock=ManualClock())), GenericInsights)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CV_ANALYTICS_QUEUE_URL": "bogus://"}, "CV_ANALYTICS_QUEUE_URL"),
        ({"CV_ANALYTICS_STORE_URL": "postgres://x"}, "CV_ANALYTICS_STORE_URL"),
    ],
)
def test_an_unknown_backend_url_names_the_variable_to_fix(tmp_path, env, named):
    wiring = Wiring(Settings.from_env(env, data_dir=tmp_path))
    with pytest.raises(ConfigurationError, match=named):
        wiring.queue() if "QUEUE" in named else wiring.store


def test_the_jobs_queues_visibility_timeouts_come_from_their_settings(tmp_path):
    env = {"CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT": "2", "CV_ANALYTICS_JOBS_RESULTS_VISIBILITY_TIMEOUT": "3"}
    with Wiring(Settings.from_env(env, data_dir=tmp_path)) as wiring:
        assert wiring.queue(JOBS_REQUEST.name).config.visibility_timeout == 2
        assert wiring.queue(JOBS_RESPONSE.name).config.visibility_timeout == 3
    with Wiring(Settings.from_env({}, data_dir=tmp_path)) as wiring:
        assert wiring.queue(JOBS_RESPONSE.name).config.visibility_timeout == JOBS_RESPONSE.config.visibility_timeout == 300


def test_the_spool_bound_is_a_setting_the_wired_client_takes(tmp_path):
    from cv_analytics.wiring.client import open_client

    settings = Settings.from_env({"CV_ANALYTICS_SPOOL_MAX_BYTES": "65536"}, data_dir=tmp_path)
    assert settings.spool_max_bytes == 65_536
    wired, explicit = open_client(settings), open_client(settings, max_spool_bytes=10)
    try:
        assert wired._options["max_spool_bytes"] == 65_536
        assert explicit._options["max_spool_bytes"] == 10  # an option given in code wins
    finally:
        wired.close(timeout=1)
        explicit.close(timeout=1)
    assert Settings.from_env({}, data_dir=tmp_path).spool_max_bytes is None  # the client's own default then
    for bad in ("0", "1.5", "lots"):
        with pytest.raises(ConfigurationError, match="CV_ANALYTICS_SPOOL_MAX_BYTES"):
            Settings.from_env({"CV_ANALYTICS_SPOOL_MAX_BYTES": bad}, data_dir=tmp_path)
