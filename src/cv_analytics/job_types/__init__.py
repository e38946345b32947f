"""The built-in job types of the CV domain: ``cv.match``, ``cv.summary``, ``analytics.report``."""

from ..jobs import JobRegistry
from .cv import MATCH_JOB, SUMMARY_JOB, MatchInput, SummaryInput
from .dependencies import JobDependencies
from .report import REPORT_JOB, ReportInput


def build_registry(deps: JobDependencies, registry: JobRegistry | None = None) -> JobRegistry:
    """``registry`` (a new one by default) with the built-in job types over ``deps``."""
    from . import cv, report

    registry = registry if registry is not None else JobRegistry()
    cv.register(registry, deps)
    report.register(registry, deps)
    return registry


__all__ = [
    "MATCH_JOB",
    "REPORT_JOB",
    "SUMMARY_JOB",
    "JobDependencies",
    "MatchInput",
    "ReportInput",
    "SummaryInput",
    "build_registry",
]
