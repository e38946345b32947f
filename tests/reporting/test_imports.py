"""The stores and the reporting package import each other lazily: either may be imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.parametrize(
    "module", ["cv_analytics.stores.sqlite", "cv_analytics.reporting", "cv_analytics.reporting.skills", "cv_analytics.entrypoints.cli"]
)
def test_importing_first_does_not_hit_an_import_cycle(module: str):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
