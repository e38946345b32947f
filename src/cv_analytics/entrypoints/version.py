"""The installed package's version, for ``--version`` and the API's OpenAPI document."""

from __future__ import annotations

from importlib import metadata


def package_version() -> str:
    try:
        return metadata.version("cv-analytics")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"
