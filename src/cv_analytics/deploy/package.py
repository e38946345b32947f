"""Build the Lambda deployment package: a zip of cv_analytics and its dependencies.

The Lambda Python 3.12 runtime ships boto3 (and botocore, s3transfer), but
none of cv-analytics' other runtime dependencies: pydantic with its compiled
core, typer, rich, jinja2, pyawscron, FastAPI, and from the ``aws`` extra
mangum (the HTTP API function), with what they pull in. Those are
installed for Lambda's platform (``manylinux2014_x86_64`` or ``manylinux_2_28_x86_64``, CPython 3.12) by pip,
whatever machine builds the package, and zipped with the cv_analytics sources.

Dependencies are pinned to the versions installed where the package is built,
so the zip runs with what the tests ran with (a fresh resolve picked a
python-dateutil 4 that the runtime's botocore does not support, for one).

The zip is reproducible: entries are sorted and carry a fixed timestamp, so the
same sources and versions give the same bytes, and its hash can name the S3
key (CloudFormation updates a function's code only when the key changes).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import MissingDependencyError, PackageBuildError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

DISTRIBUTION = "cv-analytics"

#: What the functions run on (see ``infra/template.yaml``: Runtime, Architectures).
LAMBDA_PYTHON_VERSION = "3.12"
#: The wheel platforms Lambda's python3.12 runtime runs: it is Amazon Linux 2023
#: (glibc 2.34), so manylinux_2_28 wheels as well as manylinux2014 ones (numpy
#: 2.3 and later ship only the former).
LAMBDA_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")

#: Environment markers as Lambda's python3.12 runtime evaluates them, so a
#: requirement like ``foo; python_version < "3.12"`` is judged for Lambda, not
#: for the building machine.
LAMBDA_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": LAMBDA_PYTHON_VERSION,
    "python_full_version": f"{LAMBDA_PYTHON_VERSION}.0",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "extra": "",
}

#: Distributions the Lambda Python runtime provides: never bundled.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer"})
#: Extras whose requirements the functions need (mangum, for the HTTP API).
LAMBDA_EXTRAS = ("aws",)
#: Requirements of those extras that only build the package, never run in it.
BUILD_ONLY = frozenset({"packaging"})

#: Left out of the zip: pip's console scripts (their shebangs name the build
#: machine's interpreter) and bytecode (compiled for the build machine's Python).
_SKIPPED_TOP_LEVEL = frozenset({"bin"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")

#: 1980-01-01, the earliest time a zip entry can carry.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

PIP_TIMEOUT_SECONDS = 900


def runtime_requirements(distribution: str = DISTRIBUTION) -> list[str]:
    """The distribution's runtime requirements that Lambda lacks, as pip arguments.

    The ``[aws]`` extra's are in (but for :data:`BUILD_ONLY`), other extras
    (``[dev]``) are out, and so is what the runtime ships.
    """
    requirement_type, canonicalize_name = _packaging()
    try:
        declared = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise PackageBuildError(
            f"{distribution} is not installed in this environment, so its dependencies are unknown: "
            "install it first (pip install -e . in a checkout)"
        ) from exc
    wanted = []
    for line in declared:
        requirement = requirement_type(line)
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({**LAMBDA_MARKER_ENVIRONMENT, "extra": extra}) for extra in ("", *LAMBDA_EXTRAS)
        ):
            continue
        if canonicalize_name(requirement.name) in PROVIDED_BY_RUNTIME | BUILD_ONLY:
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pip_argument = f"{requirement.name}{extras}{requirement.specifier}"
        if pip_argument not in wanted:  # boto3 is both a dependency and in [aws], say
            wanted.append(pip_argument)
    return wanted


def installed_pins(exclude: str = DISTRIBUTION) -> list[str]:
    """``name==version`` of every distribution installed here, for pip's ``--constraint``."""
    _, canonicalize_name = _packaging()
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name or canonicalize_name(name) == canonicalize_name(exclude):
            continue
        pins[canonicalize_name(name)] = f"{canonicalize_name(name)}=={dist.version}"
    return [pins[name] for name in sorted(pins)]


def build_package(out_path: str | os.PathLike[str], *, pin_installed: bool = True) -> Path:
    """Build the deployment zip at ``out_path`` and return its path.

    It holds the ``cv_analytics`` package (with its data files) at the top
    level, beside its dependencies installed by pip for Lambda's platform.
    ``pin_installed`` pins every dependency to the version installed here.
    Raises :class:`PackageBuildError` when pip fails (its message included).
    """
    out = Path(out_path).resolve()
    source = Path(__file__).resolve().parents[1]  # the cv_analytics package directory
    with tempfile.TemporaryDirectory(prefix="cv-analytics-package-") as work:
        site = Path(work) / "site"
        constraints = None
        if pin_installed:
            constraints = Path(work) / "constraints.txt"
            constraints.write_text("\n".join(installed_pins()) + "\n")
        _pip_install(runtime_requirements(), site, constraints)
        entries = sorted(
            [*_tree_entries(site, "", _SKIPPED_TOP_LEVEL), *_tree_entries(source, source.name)],
            key=lambda entry: entry[1],
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        try:
            _write_zip(partial, entries)
            partial.replace(out)  # never leave a half-written zip under the real name
        finally:
            partial.unlink(missing_ok=True)
    return out


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def suggested_key(path: str | os.PathLike[str]) -> str:
    """An S3 key named by the zip's content, so a new build gets a new key."""
    return f"cv-analytics/lambda-{sha256_of(path)[:16]}.zip"


def _pip_install(requirements: Sequence[str], target: Path, constraints: Path | None) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        *(option for platform in LAMBDA_PLATFORMS for option in ("--platform", platform)),
        "--only-binary=:all:",
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--implementation", "cp",
        "--target", str(target),
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "--quiet",
    ]  # fmt: skip
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    command += list(requirements)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PackageBuildError(
            f"pip did not finish within {PIP_TIMEOUT_SECONDS} s installing {', '.join(requirements)}: "
            "check that PyPI (or your index) is reachable"
        ) from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        hint = (
            " An installed version may have no wheel for Lambda's platform: try again without pinning "
            "(--no-pin)."
            if constraints is not None and "from versions" in detail
            else ""
        )
        raise PackageBuildError(
            f"pip could not install the dependencies for Lambda ({', '.join(LAMBDA_PLATFORMS)}, CPython "
            f"{LAMBDA_PYTHON_VERSION}):\n{detail}\n{hint}".rstrip()
        )


def _tree_entries(root: Path, prefix: str, skip_top_level: frozenset[str] = frozenset()) -> Iterator[tuple[Path, str]]:
    """(file, name in the zip) for every file under ``root`` worth shipping."""
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        subdirectories[:] = [
            d for d in subdirectories if d != "__pycache__" and not (here == root and d in skip_top_level)
        ]
        for name in files:
            if not name.endswith(_SKIPPED_SUFFIXES):
                path = here / name
                yield path, "/".join(filter(None, [prefix, path.relative_to(root).as_posix()]))


def _write_zip(path: Path, entries: Sequence[tuple[Path, str]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for file, arcname in entries:
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Lambda runs the code as another user than the one who built it: world-readable.
            mode = 0o755 if os.access(file, os.X_OK) or file.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            with open(file, "rb") as handle:
                archive.writestr(info, handle.read(), compresslevel=9)


def _packaging() -> tuple[type[Requirement], Callable[[str], str]]:
    """``packaging``'s Requirement and canonicalize_name, with an install hint when it is missing."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError as exc:  # pragma: no cover - pip environments have it
        raise MissingDependencyError(
            "building the Lambda package needs 'packaging': pip install 'cv-analytics[aws]'"
        ) from exc
    return Requirement, canonicalize_name
