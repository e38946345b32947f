"""The web app's settings: analytics on or off, and the workers' metrics directory."""

from __future__ import annotations

import pathlib

import pytest

from cv_analytics.exceptions import ConfigurationError
from cv_analytics.wiring import Settings


@pytest.mark.parametrize(("raw", "enabled"), [("", True), ("1", True), ("yes", True), ("0", False), ("OFF", False), ("false", False)])
def test_analytics_enabled_reads_the_usual_spellings(raw, enabled):
    assert Settings.from_env({"CV_ANALYTICS_ANALYTICS_ENABLED": raw}).analytics_enabled is enabled
    assert Settings.from_env({}).analytics_enabled is True


def test_a_bad_analytics_switch_names_the_variable():
    with pytest.raises(ConfigurationError, match="CV_ANALYTICS_ANALYTICS_ENABLED must be 1 or 0"):
        Settings.from_env({"CV_ANALYTICS_ANALYTICS_ENABLED": "maybe"})


def test_the_metrics_directory_is_prometheus_clients_variable(tmp_path):
    assert Settings.from_env({}).metrics_dir is None
    assert Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).metrics_dir == pathlib.Path(tmp_path)
