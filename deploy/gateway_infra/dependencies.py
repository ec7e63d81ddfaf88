"""The data plane's third-party runtime packages, as a Lambda layer built at synth time.

The detector (`dataplane/privacy.py`) needs `phonenumberslite` and `python-stdnum`. Both are
pure-Python wheels, so no Docker bundling is needed: the layer is assembled from the
distributions installed in the synthesizing environment, file by file from each wheel's
RECORD (no bytecode), under `python/` where the Lambda Python runtime looks. Synth refuses a
version that differs from `requirements.txt`, so the layer is always the pinned release.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Distributions the Lambda needs beyond the runtime's boto3 and the Powertools layer.
LAMBDA_DISTRIBUTIONS = ("phonenumberslite", "python-stdnum")


class DependencyError(RuntimeError):
    """A Lambda dependency is missing, unpinned or installed at another version."""


def pinned_versions(requirements: Path = REPO_ROOT / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==([^\s#]+)", line.strip())
        if match:
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    return pins


def _distribution_files(name: str, version: str) -> list[tuple[Path, str]]:
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise DependencyError(f"{name}=={version} is not installed; run pip install -r requirements.txt") from None
    if distribution.version != version:
        raise DependencyError(f"{name} {distribution.version} is installed, requirements.txt pins {version}")
    files = []
    for entry in distribution.files or ():
        relative = str(entry)
        if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
            continue  # scripts outside site-packages, and bytecode for another interpreter
        files.append((Path(str(entry.locate())), relative))
    return files


def build_layer_directory(target: Path | None = None) -> Path:
    """A directory holding `python/<packages>` for a LayerVersion; content-addressed."""
    pins = pinned_versions()
    files: list[tuple[Path, str]] = []
    for name in LAMBDA_DISTRIBUTIONS:
        if name not in pins:
            raise DependencyError(f"{name} is not pinned in requirements.txt")
        files += _distribution_files(name, pins[name])
    digest = hashlib.sha256(repr(sorted((rel for _, rel in files))).encode() + repr(pins).encode()).hexdigest()[:16]
    root = target or Path(tempfile.gettempdir()) / f"gateway-dataplane-deps-{digest}"
    if target is None and root.exists():
        return root  # content-addressed: a directory of this name holds exactly these files
    # Built aside and renamed into place: two synths at once (a test and `python -m tests.aws`,
    # or two checkouts on one machine) never see, or delete, each other's half-built layer.
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{root.name}.", dir=root.parent))
    for source, relative in files:
        destination = staging / "python" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    if target is not None and root.exists():
        shutil.rmtree(root)
    try:
        staging.rename(root)
    except OSError:  # another synth put the same content there first
        shutil.rmtree(staging, ignore_errors=True)
    return root
