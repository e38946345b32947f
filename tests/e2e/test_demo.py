"""`cv-analytics demo`, as `make demo` runs it."""

from __future__ import annotations

import json
import re

import pytest


@pytest.mark.slow
def test_demo_runs_the_real_pipeline_and_writes_the_report_and_a_second_run_adds_to_it(cli, tmp_path):
    data = tmp_path / "demo-data"
    first = cli("demo", "--interactions", "300", "--data-dir", str(data)).stdout
    assert re.search(r"300 interactions in the store \((\d+) answered", first)
    assert "correlation rate:" in first and "top skills:" in first and "gaps" in first
    report = re.search(r"weekly report for (\d{4}-W\d\d): (\S+\.html)", first)
    assert report and (data / "reports").is_dir()
    html = (data / "reports" / report.group(2).rsplit("/", 1)[-1]).read_text()
    assert "<html" in html.lower() and report.group(1) in html

    second = cli("demo", "--interactions", "300", "--data-dir", str(data)).stdout
    assert "600 interactions in the store" in second  # fresh ids: the second run adds, nothing is deduplicated away
    status = json.loads(cli("--data-dir", str(data), "status", "--json").stdout)
    assert status["store"]["totalInteractions"] == 600
    assert status["store"]["pendingQueries"] == status["store"]["pendingResponses"] == 0


@pytest.mark.slow
def test_demo_keeps_to_its_own_directory_and_never_the_configured_backends(cli, cli_env, tmp_path):
    real = tmp_path / "data"
    # a configured backend the demo must not touch: were it used, the demo would fail on it
    cli_env["CV_ANALYTICS_STORE_URL"] = "postgres://owner-data"
    result = cli("demo", "--interactions", "20")
    assert f"demo data: {real / 'demo'} (its own embedded queue and store)" in result.stdout
    assert (real / "demo" / "store.db").is_file() and (real / "demo" / "reports").is_dir()
    assert not (real / "store.db").exists() and not (real / "queues.db").exists()

    told = cli("demo", "--interactions", "5", "--use-configured-backends", check=False)
    assert told.returncode == 2 and "unknown store URL 'postgres://owner-data'" in told.stderr
