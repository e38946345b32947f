"""Headless Chromium renders the HTML report to a PNG (the README's picture is made this way).

Set CV_ANALYTICS_UPDATE_SCREENSHOT=1 to also refresh docs/report-screenshot.png.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import shutil
import struct
import subprocess
import zlib

import pytest

from cv_analytics.reporting import write_report
from cv_analytics.skills import DEFAULT_CATALOG_PATH, SkillsCatalog
from cv_analytics.reporting.synthetic import synthetic_week
from cv_analytics.wiring import insights_for

from .dataset import PREVIOUS_WEEK, WEEK

DOCS_PNG = pathlib.Path(__file__).resolve().parents[2] / "docs" / "report-screenshot.png"


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing in CI: the test set-up must install Debian's chromium (make chromium)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def screenshot(html: pathlib.Path, png: pathlib.Path, profile: pathlib.Path, size: tuple[int, int]) -> None:
    subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@pytest.mark.slow
def test_headless_chromium_renders_the_html_report_to_a_png(store, clock, tmp_path):
    clock.set(dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC).timestamp())  # Monday, when the report goes out
    catalog = SkillsCatalog.load(DEFAULT_CATALOG_PATH)
    store.write_interactions(list(synthetic_week(PREVIOUS_WEEK, 900, seed=11, skill_weights={"GraphQL": 6})))
    store.write_interactions(list(synthetic_week(WEEK, 1200, seed=12, skill_weights={"Kubernetes": 6})))
    html = write_report(insights_for(store), WEEK, tmp_path, ("html",), catalog=catalog)["html"]
    png = tmp_path / "report.png"
    screenshot(html, png, tmp_path / "profile", (1000, 2000))
    width, height, distinct = png_facts(png.read_bytes())
    assert (width, height) == (1000, 2000)
    # a blank or unstyled page compresses to a handful of byte values; the report has
    # text, coloured bars and badges
    assert distinct > 200 and png.stat().st_size > 50_000
    if os.environ.get("CV_ANALYTICS_UPDATE_SCREENSHOT") == "1":
        tall = tmp_path / "tall.png"
        screenshot(html, tall, tmp_path / "profile", (1000, 2750))
        DOCS_PNG.parent.mkdir(exist_ok=True)
        shutil.copyfile(tall, DOCS_PNG)
