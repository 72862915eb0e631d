"""python -m backfill_platform.sandbox --port N (configuration as JSON in BACKFILL_SANDBOX_CONFIG)."""

from __future__ import annotations

import argparse
import os

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.server import CONFIG_ENV, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backfill_platform.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raw = os.environ.get(CONFIG_ENV)
    serve(SandboxConfig.from_json(raw) if raw else SandboxConfig(), args.host, args.port)


if __name__ == "__main__":
    main()
