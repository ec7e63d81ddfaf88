"""Runs the JavaScript unit tests (`tests/js/*.test.mjs`) with the system's Node test runner,
so `make test` covers the chat and chart scripts too; a failure shows Node's own report."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_javascript_units() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed for the JavaScript unit tests (apt-get install nodejs; .ci/run does).")
    files = sorted(str(path) for path in HERE.glob("*.test.mjs"))
    assert len(files) >= 5, files
    result = subprocess.run(
        [node, "--test", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", result.stdout, re.MULTILINE))
    assert counts.get("fail") == "0", result.stdout
    # Every file's tests ran (a file that fails to load counts as one failed test).
    assert int(counts["pass"]) == int(counts["tests"]) >= len(files) * 2, counts
