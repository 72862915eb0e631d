"""The code base stays ruff and pyright clean (the same checks a reviewer runs)."""

from __future__ import annotations

import subprocess
import sys

from backfill_platform_tests.conftest import REPO_ROOT


def test_ruff_clean() -> None:
    # ruff is part of the test extra; run it from this interpreter's environment (its bin/ may not be on PATH)
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pyright_clean() -> None:
    # basic mode, configured in pyproject.toml; told this interpreter so any venv location works
    proc = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
