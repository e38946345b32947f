"""``export --to``: a file written whole or not at all, and an S3 object (moto on loopback), the archive before a teardown."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.moto_server import REGION

from .conftest import exported


def _pairs(path, n: int):
    lines = []
    for i in range(n):
        cid = f"00000000-0000-4000-8000-{i:012d}"
        lines.append(json.dumps({"eventType": "query", "correlationId": cid, "timestamp": 1_763_164_800_000 + i, "query": f"q {i}"}))
        lines.append(json.dumps({"eventType": "response", "correlationId": cid, "timestamp": 1_763_164_800_100 + i, "response": "a"}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_export_to_a_file_and_to_s3(cli, cli_env, tmp_path, moto_reset):
    cli("send", str(_pairs(tmp_path / "p.jsonl", 3)))
    cli("worker", "--drain")
    expected = exported(cli)

    out = tmp_path / "archive.jsonl"
    result = cli("export", "--to", str(out))
    assert "exported 3 interaction(s)" in result.stderr and result.stdout == ""
    assert [json.loads(line) for line in out.read_text().splitlines()] == expected
    assert not list(tmp_path.glob(".cv-analytics-export-*"))

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_reset)
    s3.create_bucket(Bucket="cv-archive")
    cli_env.update(AWS_ENDPOINT_URL=moto_reset, AWS_REGION=REGION)
    cli("export", "--format", "csv", "--to", "s3://cv-archive/2026/interactions.csv")
    body = s3.get_object(Bucket="cv-archive", Key="2026/interactions.csv")["Body"].read().decode()
    assert body.splitlines()[0].startswith("correlationId,") and len(body.splitlines()) == 4

    for target, named in (
        ("s3://no-such-bucket/x.jsonl", "could not upload the export to s3://no-such-bucket/x.jsonl"),
        ("s3://cv-archive/", "an S3 destination looks like s3://bucket/"),
        (str(tmp_path / "missing" / "x.jsonl"), "does not exist"),
    ):
        failed = cli("export", "--to", target, check=False)
        assert failed.returncode != 0 and "Traceback" not in failed.stderr
        assert failed.stderr.strip().splitlines()[-1].startswith("error: ") and named in failed.stderr, failed.stderr
