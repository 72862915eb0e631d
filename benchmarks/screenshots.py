"""Regenerate docs/ui-*.png: the browser check (e2e/test_daemon_backfill.py) run with UI_SCREENSHOTS set keeps the
PNGs it takes of the asset catalog, an asset's partitions and the backfill's run: the pictures are the asserted pages.

    .venv/bin/python benchmarks/screenshots.py [DIR]      # DIR defaults to docs/
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "backfill_platform_tests/e2e/test_daemon_backfill.py"


def main(argv: list[str]) -> int:
    target = Path(argv[0]).resolve() if argv else ROOT / "docs"
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "UI_SCREENSHOTS": str(target)}
    started = time.time()
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", TEST], cwd=ROOT, env=env)
    # a skipped test (no chromium) exits 0 having written nothing: that is a failure here
    written = sorted(p.name for p in target.glob("ui-*.png") if p.stat().st_mtime >= started)
    print(f"{target}: {', '.join(written) or 'no screenshot written'}")
    return code or (0 if written else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
