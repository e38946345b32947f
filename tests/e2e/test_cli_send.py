"""`cv-analytics send`: what it refuses (with its place), what it sends, and what the queue dropped."""

from __future__ import annotations

import json

from cv_analytics.wiring import Settings, open_queue


def _query(cid: str, n: int = 0) -> str:
    return json.dumps({"eventType": "query", "correlationId": cid, "timestamp": 1_763_164_800_000 + n, "query": f"q{n}"})


def _response(cid: str, n: int = 0) -> str:
    return json.dumps({"eventType": "response", "correlationId": cid, "timestamp": 1_763_164_800_100 + n, "response": "a"})


def _visible(cli_env) -> int:
    return open_queue(Settings.from_env(cli_env)).attributes().visible


def test_one_bad_line_is_refused_with_its_file_and_line_and_the_good_ones_go_in(cli, cli_env, tmp_path):
    good = [_query(f"00000000-0000-4000-8000-{i:012d}", i).encode() for i in range(11)]
    deeply_nested = b'{"eventType": "query", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    lines = good[:3] + [b"\xff\xfe not utf-8 \xc3"] + good[3:6] + [b""] + good[6:9] + [deeply_nested, b"{not json"] + good[9:]
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = cli("send", str(path), check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    refused = [line for line in result.stderr.splitlines() if line.startswith("refused ")]
    assert refused == [
        f"refused {path}:4: not UTF-8 text (byte 0xff at offset 0): not sent",
        f"refused {path}:8: empty body; a queue (SQS) refuses empty messages: not sent",
    ]
    # the queue takes what it can carry, valid or not: the deeply nested and the non-JSON lines go to the processor
    assert result.stderr.splitlines()[-1] == "sent 13 message(s) to 'analytics', refused 2"
    assert _visible(cli_env) == 13


def test_a_non_utf8_file_an_empty_json_file_a_directory_and_a_missing_file_are_refused_by_name(cli, cli_env, tmp_path):
    (tmp_path / "latin1.json").write_bytes(_query("c-latin").replace("q0", "caf\xe9").encode("latin-1"))
    (tmp_path / "empty.json").write_text("  \n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "good.json").write_text(_query("c-good"))
    names = ["latin1.json", "empty.json", "folder", "missing.json", "good.json"]

    result = cli("send", *(str(tmp_path / n) for n in names), check=False)

    assert result.returncode == 1
    assert f"refused {tmp_path / 'latin1.json'}: not UTF-8 text" in result.stderr
    assert f"refused {tmp_path / 'empty.json'}: empty body" in result.stderr
    assert f"refused {tmp_path / 'folder'}: is a directory: pass its files instead" in result.stderr
    assert f"refused {tmp_path / 'missing.json'}: no such file" in result.stderr
    assert "sent 1 message(s) to 'analytics', refused 4" in result.stderr
    assert _visible(cli_env) == 1


def test_a_query_and_a_response_with_a_long_correlation_id_both_arrive(cli, cli_env, tmp_path):
    cid = "c" * 127  # `<cid>:query` and `<cid>:response` shared their first 128 characters
    path = tmp_path / "pair.jsonl"
    path.write_text(_query(cid) + "\n" + _response(cid) + "\n")

    assert "sent 2 message(s)" in cli("send", str(path)).stderr
    assert _visible(cli_env) == 2
    cli("worker", "--drain")
    rows = [json.loads(line) for line in cli("export").stdout.splitlines()]
    assert [(r["correlationId"], r["status"]) for r in rows] == [(cid, "answered")]


def test_resending_the_same_files_says_how_many_the_queue_dropped_as_duplicates(cli, cli_env, tmp_path):
    path = tmp_path / "pair.jsonl"
    path.write_text(_query("c-dup") + "\n" + _response("c-dup") + "\n")
    cli("send", str(path))

    again = cli("send", str(path))

    assert again.returncode == 0
    assert again.stderr.splitlines()[-1].startswith("sent 0 message(s) to 'analytics', refused 0, 2 duplicate(s)")
    assert _visible(cli_env) == 2
