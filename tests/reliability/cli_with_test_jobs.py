"""``python -m tests.reliability.cli_with_test_jobs ARGS...``: ``cv-analytics ARGS...`` with the test job types
(``tests.jobs.types_for_tests``: each run appends its start and end to a ledger) beside the built-in ones.

The command is the real one (``jobs worker`` with its signal handling and exit); only its registry gains types.
"""

from __future__ import annotations

from typing import Any

from cv_analytics.wiring import jobs as wiring_jobs

from ..jobs.types_for_tests import register_test_types

_builtin_registry = wiring_jobs.builtin_registry


def _with_test_types(wiring: Any) -> Any:
    return register_test_types(_builtin_registry(wiring))


if __name__ == "__main__":
    wiring_jobs.builtin_registry = _with_test_types
    from cv_analytics.entrypoints.cli import app

    app(prog_name="cv-analytics")
