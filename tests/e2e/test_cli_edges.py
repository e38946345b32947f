"""The smaller edges of the command line (issue 7, item 15), each checked as a user meets it."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import re
import subprocess
import sys

import pytest

from .conftest import exported


def _pairs(path: pathlib.Path, n: int, *, cache_hit: bool = False) -> pathlib.Path:
    lines = []
    for i in range(n):
        cid = f"00000000-0000-4000-8000-{i:012d}"
        lines.append(json.dumps({"eventType": "query", "correlationId": cid, "timestamp": 1_763_164_800_000 + i, "query": f"q {i}"}))
        lines.append(json.dumps({"eventType": "response", "correlationId": cid, "timestamp": 1_763_164_800_100 + i,
                                 "response": "a" * 200, "performance": {"cacheHit": cache_hit}, "metadata": {"matchQuality": 0.9}}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _is_camel(key: str) -> bool:
    return re.fullmatch(r"[a-z][a-zA-Z0-9]*", key) is not None


def _keys(value: object) -> list[str]:
    if isinstance(value, dict):
        return [k for k, v in value.items() for k in [k, *_keys(v)]]
    if isinstance(value, list):
        return [k for item in value for k in _keys(item)]
    return []


def test_flags_take_no_value_and_the_help_shows_none(cli):
    for args in (["status", "--help"], ["dlq", "show", "--help"], ["--help"]):
        assert "<bool>" not in cli(*args).stdout
    assert cli("--version").stdout.startswith("cv-analytics ")
    assert cli("-vv", "--version").returncode == 0


@pytest.mark.slow
def test_status_and_dlq_show_json_are_camel_case_with_numbers_as_numbers(cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"eventType": "query", "timestamp": 1763164800000, "query": "no id"}\n{"not json\n')
    cli("send", str(_pairs(tmp_path / "p.jsonl", 1)), str(bad))
    cli("worker", "--drain")

    status = json.loads(cli("status", "--json").stdout)
    assert all(_is_camel(k) for k in _keys(status)), _keys(status)
    assert status["store"]["interactions"]["answered"] == 1 and "orphanResponse" in status["store"]["interactions"]
    letters = json.loads(cli("dlq", "show", "--json").stdout)
    assert len(letters) == 2 and all(_is_camel(k) for k in _keys(letters))
    assert all(isinstance(letter["receiveCount"], int) and letter["receiveCount"] >= 1 for letter in letters)


@pytest.mark.parametrize(
    "args", [["dlq", "show", "--limit", "-1"], ["dlq", "redrive", "--max", "-3"], ["demo", "--interactions", "-5"], ["dlq", "show", "--limit", "0"]]
)
def test_negative_counts_are_refused_as_usage_errors(cli, args):
    result = cli(*args, check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: Invalid value for")


def test_the_same_bad_week_exits_2_from_export_and_report(cli):
    codes = {cmd: cli(cmd, "--week", "2026-W60", check=False).returncode for cmd in ("export", "report")}
    assert codes == {"export": 2, "report": 2}


@pytest.mark.parametrize("command", [["status"], ["export"], ["report", "--week", "2025-W46"], ["dlq", "show"]])
def test_read_only_commands_never_create_a_mistyped_data_directory(cli, tmp_path, command):
    mistyped = tmp_path / "cv-analytcs-data"
    result = cli("--data-dir", str(mistyped), *command, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: the data directory {mistyped} does not exist: check --data-dir or CV_ANALYTICS_DATA_DIR (now {mistyped})"
    )
    assert not mistyped.exists()


@pytest.mark.slow
def test_csv_export_writes_booleans_as_json_does_and_a_closed_pipe_exits_0(cli, cli_env, tmp_path):
    cli("send", str(_pairs(tmp_path / "p.jsonl", 1500, cache_hit=True)))
    cli("worker", "--drain")
    rows = list(csv.DictReader(io.StringIO(cli("export", "--format", "csv").stdout)))
    assert {row["cacheHit"] for row in rows} == {"true"}
    assert {row["cacheHit"] for row in exported(cli)} == {True}

    # `export | head -1`: the reader goes away after one line
    export = subprocess.Popen([sys.executable, "-m", "cv_analytics", "export"], env=cli_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert export.stdout is not None and export.stdout.readline()
    export.stdout.close()
    assert export.wait(60) == 0
    assert export.stderr is not None and export.stderr.read() == b""


@pytest.mark.slow
def test_the_scheduler_prints_its_next_fire_time_and_a_bad_schedule_names_its_variable(cli, cli_env, tmp_path):
    cli_env.update({"CV_ANALYTICS_REPORT_CHANNEL": "file", "SENDER_EMAIL": "r@cv.example.dev", "RECIPIENT_EMAIL": "o@cv.example.dev",
                    "CV_ANALYTICS_REPORT_DIR": str(tmp_path / "out")})  # fmt: skip
    cli("send", str(_pairs(tmp_path / "p.jsonl", 1)))
    cli("worker", "--drain")
    scheduler = subprocess.Popen([sys.executable, "-m", "cv_analytics", "scheduler", "--no-catch-up", "--cron", "cron(0 7 ? * MON *)"],
                                 env=cli_env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert scheduler.stderr is not None
        first = scheduler.stderr.readline()
    finally:
        scheduler.terminate()
        scheduler.wait(30)
    assert re.search(r"next at \d{4}-\d\d-\d\dT07:00:00\+00:00 \(report for \d{4}-W\d\d\)", first), first

    cli_env["CV_ANALYTICS_REPORT_SCHEDULE"] = "cron(0 7 ? * MOM *)"
    result = cli("scheduler", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: CV_ANALYTICS_REPORT_SCHEDULE='cron(0 7 ? * MOM *)': ")


def test_aws_bootstrap_without_credentials_names_the_region_source_and_what_to_set(cli, cli_env, tmp_path):
    for name in [n for n in cli_env if n.startswith("AWS_")]:
        del cli_env[name]
    cli_env.update({"AWS_DEFAULT_REGION": "eu-west-3", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"})  # fmt: skip
    result = cli("aws", "bootstrap", check=False)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith("error: no usable AWS credentials") and "\n" not in line
    assert "region eu-west-3 (from AWS_DEFAULT_REGION)" in line
    assert "AWS_ACCESS_KEY_ID" in line and "AWS_SECRET_ACCESS_KEY" in line and "AWS_PROFILE" in line
