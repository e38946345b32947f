"""The Lambda deployment zip: our code, the dependencies Lambda lacks, built for Lambda."""

from __future__ import annotations

import importlib.metadata
import pathlib
import shutil
import subprocess
import tomllib
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from cv_analytics.entrypoints.cli.aws import aws_app
from cv_analytics.deploy.package import build_package, installed_pins, runtime_requirements, sha256_of

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCE = REPO / "src" / "cv_analytics"
PYDANTIC_CORE_CP312 = "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so"


def _project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _lambda_requirements_declared() -> list[Requirement]:
    """[project] dependencies and the [aws] extra of pyproject.toml, read independently of the installed metadata."""
    project = _project()
    return [Requirement(line) for line in (*project["dependencies"], *project["optional-dependencies"]["aws"])]


def _write_current_metadata(directory: pathlib.Path) -> None:
    """cv-analytics' metadata as this checkout's pyproject.toml declares it, as a dist-info in ``directory``.

    The installed (editable) metadata is as old as the last ``pip install -e .``;
    the packager must be judged against the declarations it will be built from.
    """
    project = _project()
    lines = ["Metadata-Version: 2.1", "Name: cv-analytics", "Version: 0"]
    lines += [f"Requires-Dist: {line}" for line in project["dependencies"]]
    for extra, requirements in project["optional-dependencies"].items():
        lines.append(f"Provides-Extra: {extra}")
        for line in requirements:
            requirement = Requirement(line)
            marker = f"({requirement.marker}) and " if requirement.marker else ""
            requirement.marker = None
            lines.append(f'Requires-Dist: {requirement}; {marker}extra == "{extra}"')
    info = directory / "cv_analytics-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("\n".join(lines) + "\n")


@pytest.fixture
def current_metadata(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This checkout's declarations found first on sys.path (see :func:`_write_current_metadata`)."""
    _write_current_metadata(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_the_requirements_are_the_declared_runtime_and_aws_ones_without_what_lambda_ships(current_metadata: None) -> None:
    wanted = {canonicalize_name(Requirement(line).name) for line in runtime_requirements()}

    declared = {canonicalize_name(r.name) for r in _lambda_requirements_declared()}
    assert wanted == declared - {"boto3", "botocore", "s3transfer", "packaging"}
    assert {"pydantic", "typer", "rich", "jinja2", "pyawscron", "fastapi", "mangum"} <= wanted
    assert not wanted & {"boto3", "moto", "pytest", "cfn-lint", "packaging"}, "[dev] and build tools stay out"


def test_the_requirements_keep_the_declared_version_ranges(current_metadata: None) -> None:
    ranges = {canonicalize_name(Requirement(line).name): Requirement(line).specifier for line in runtime_requirements()}
    for declared in _lambda_requirements_declared():
        if canonicalize_name(declared.name) in ranges:
            assert ranges[canonicalize_name(declared.name)] == declared.specifier


def test_pins_are_the_versions_installed_here_and_leave_our_own_package_out() -> None:
    pins = installed_pins()

    assert f"pydantic=={importlib.metadata.version('pydantic')}" in pins
    assert f"pydantic-core=={importlib.metadata.version('pydantic-core')}" in pins
    assert not [pin for pin in pins if pin.startswith("cv-analytics==")]


# -- a real build (pip installs wheels for Lambda's platform from the package index) --------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """The zip `cv-analytics aws package` builds from this checkout's declared dependencies."""
    out = tmp_path_factory.mktemp("package") / "lambda.zip"
    metadata = tmp_path_factory.mktemp("metadata")
    _write_current_metadata(metadata)
    with pytest.MonkeyPatch.context() as patch:  # for this module's builds (the second one too)
        patch.syspath_prepend(str(metadata))
        result = CliRunner().invoke(aws_app, ["package", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(out)
        assert "CodeKey=cv-analytics/lambda-" in result.stderr
        yield out


@pytest.fixture(scope="module")
def names(built: pathlib.Path) -> set[str]:
    with zipfile.ZipFile(built) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_the_zip_holds_the_cv_analytics_sources_at_its_root(names: set[str]) -> None:
    sources = {
        "cv_analytics/" + path.relative_to(SOURCE).as_posix()
        for path in SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert {"cv_analytics/__init__.py", "cv_analytics/events/__init__.py", "cv_analytics/deploy/resources.py"} <= names
    assert sources <= names
    assert "cv_analytics/entrypoints/aws_lambda/__init__.py" in names  # the handlers the template names


@pytest.mark.slow
def test_the_zip_holds_dependencies_built_for_lambda_python_312(names: set[str]) -> None:
    assert PYDANTIC_CORE_CP312 in names
    for package in ("pydantic", "typer", "rich", "jinja2", "pyawscron", "fastapi", "mangum"):
        assert f"{package}/__init__.py" in names, package
    assert not [n for n in names if "cpython-311" in n or "win_amd64" in n or "darwin" in n]


@pytest.mark.slow
def test_the_zip_leaves_out_boto3_bytecode_and_console_scripts(names: set[str]) -> None:
    top_level = {name.split("/")[0] for name in names}
    assert not top_level & {"boto3", "botocore", "s3transfer", "bin"}
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]


@pytest.mark.slow
def test_the_zip_pins_the_dependency_versions_the_tests_ran_with(names: set[str]) -> None:
    for distribution in ("pydantic", "pydantic_core", "jinja2", "python_dateutil"):
        version = importlib.metadata.version(distribution.replace("_", "-"))
        assert f"{distribution}-{version}.dist-info/METADATA" in names, distribution


@pytest.mark.slow
def test_building_twice_gives_the_same_bytes(built: pathlib.Path, tmp_path: pathlib.Path) -> None:
    again = build_package(tmp_path / "again.zip")

    if sha256_of(again) == sha256_of(built):
        return
    # Only a source file edited between the two builds (in a checkout shared
    # with other work) may explain a difference: the second build must hold
    # what is on disk now. Anything else is a reproducibility bug.
    with zipfile.ZipFile(built) as first, zipfile.ZipFile(again) as second:
        entries = [{i.filename: (i.CRC, i.date_time, i.external_attr) for i in z.infolist()} for z in (first, second)]
        differing = sorted(n for n in entries[0].keys() | entries[1].keys() if entries[0].get(n) != entries[1].get(n))
        edited = [
            name
            for name in differing
            if name.startswith("cv_analytics/")
            and name in entries[0]
            and name in entries[1]
            and entries[0][name][1:] == entries[1][name][1:]  # same timestamp and mode: only the content moved
            and second.read(name) == (SOURCE / name.removeprefix("cv_analytics/")).read_bytes()
        ]
        same_order = first.namelist() == second.namelist()
    assert differing, "every entry is the same, yet the bytes differ: zip metadata is not reproducible"
    assert same_order, "the entries come in another order"
    unexplained = sorted(set(differing) - set(edited))
    assert not unexplained, f"two builds differ in {len(unexplained)} entries: {unexplained[:20]}"


def _python312() -> str | None:
    for candidate in ("python3.12", *sorted(pathlib.Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))):
        path = shutil.which(str(candidate))
        if path is None:
            continue
        probe = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 12)":
            return path
    return None


@pytest.mark.slow
def test_the_unzipped_package_imports_and_validates_events_under_python_312(
    built: pathlib.Path, tmp_path: pathlib.Path, contract_dir: pathlib.Path
) -> None:
    python = _python312()
    if python is None:
        pytest.skip("no Python 3.12 interpreter on this machine to try the package with")
    task = tmp_path / "task"  # as Lambda lays it out in /var/task
    with zipfile.ZipFile(built) as archive:
        archive.extractall(task)
    script = (
        "import sys, pathlib\n"
        f"sys.path.insert(0, {str(task)!r})\n"
        "import pydantic_core, cv_analytics.events as events\n"
        f"assert pydantic_core.__file__.startswith({str(task)!r}), pydantic_core.__file__\n"
        f"for path in sorted(pathlib.Path({str(contract_dir)!r}).glob('*.json')):\n"
        "    event = events.parse_event(path.read_text())\n"
        "    print(path.name, event.event_type.value, event.correlation_id)\n"
    )
    # -I: no user site, no PYTHON* variables, no current directory: only the zip's contents.
    result = subprocess.run([python, "-I", "-c", script], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(list(contract_dir.glob("*.json"))) >= 4
