"""The code base stays ruff clean (the same check a reviewer runs)."""

from __future__ import annotations

import shutil
import subprocess

from backfill_platform_tests.conftest import REPO_ROOT


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is part of the test extra: pip install -e '.[test]'"
    proc = subprocess.run([ruff, "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
