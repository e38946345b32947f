"""Run the reliability suite and rewrite the README's "Faults survived" table from its rows.

    python -m tests.reliability.table            # make faults: runs tests/reliability, then rewrites the table
    python -m tests.reliability.table --from DIR # rewrite from rows a previous run left in DIR

Each scenario writes its row (:func:`tests.reliability.harness.record_survived`) whether it
passes or not, so the table says what the last run saw; a failed run exits non-zero and
leaves the README alone.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from .harness import REPOSITORY_ROOT, RESULTS_VARIABLE

README = REPOSITORY_ROOT / "README.md"
BEGIN, END = "<!-- faults-survived:begin -->", "<!-- faults-survived:end -->"


def _scenario_order(row: dict) -> tuple[int, str]:
    number = re.match(r"\d+", row["scenario"])
    return (int(number.group()) if number else 99, row["backend"])


def render(rows: list[dict]) -> str:
    lines = [
        "| # | backend | injected | traffic | lost | duplicated | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=_scenario_order):
        lines.append(
            f"| {row['scenario']} | {row['backend']} | {row['injected']} | {row['traffic']} "
            f"| {row['lost']:,} | {row['duplicated']:,} | {row['notes']} |"
        )
    dates = sorted(row["recordedAt"][:10] for row in rows)
    loads = [row["loadAverage"] for row in rows]
    if rows:
        lines.append("")
        lines.append(
            f"From the run of {dates[-1]} (`make faults`; load average {min(loads):.2f}–{max(loads):.2f} "
            "while the scenarios ran, two cores)."
        )
    return "\n".join(lines)


def rewrite_readme(rows: list[dict], readme: pathlib.Path = README) -> None:
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: {readme} has no {BEGIN} … {END} markers; add them where the table belongs")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{render(rows)}\n{END}{tail}", encoding="utf-8")


def load_rows(directory: pathlib.Path) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=pathlib.Path, help="rows of a previous run (skip running the suite)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k kill)")
    args = parser.parse_args(argv)
    if args.source is not None:
        rows = load_rows(args.source)
        if not rows:
            print(f"error: no rows in {args.source}; run `make faults` first", file=sys.stderr)
            return 1
        rewrite_readme(rows)
        return 0
    with tempfile.TemporaryDirectory(prefix="faults-") as out:
        env = {**os.environ, RESULTS_VARIABLE: out}
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "tests/reliability", *args.pytest_args]
        result = subprocess.run(command, cwd=REPOSITORY_ROOT, env=env, check=False)
        rows = load_rows(pathlib.Path(out))
        if result.returncode != 0:
            print(f"error: the reliability suite failed (exit {result.returncode}); the README table is unchanged", file=sys.stderr)
            return 1
        rewrite_readme(rows)
        print(f"rewrote the Faults survived table of {README} from {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
