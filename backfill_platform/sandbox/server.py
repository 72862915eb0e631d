"""Serve the sandbox with uvicorn, in this process (CLI) or in a child process (tests, demo, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn

from backfill_platform.processes import die_with_parent
from backfill_platform.sandbox.app import build_app
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.env import base_urls

CONFIG_ENV = "BACKFILL_SANDBOX_CONFIG"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve(config: SandboxConfig, host: str, port: int) -> None:
    uvicorn.run(build_app(config), host=host, port=port, log_level="warning", access_log=False)


class SandboxProcess:
    """The sandbox in a child process on a free loopback port; a context manager."""

    def __init__(self, config: SandboxConfig | None = None, port: int | None = None) -> None:
        self.config = config or SandboxConfig()
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        env = dict(os.environ, **{CONFIG_ENV: self.config.to_json().decode()})
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backfill_platform.sandbox", "--port", str(self.port)],
            env=env,
            cwd=root,
            preexec_fn=die_with_parent,  # a killed command leaves no sandbox behind
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with status {self.proc.returncode}")
            try:
                httpx.get(f"{self.origin}/_sandbox/config", timeout=1.0).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sandbox did not answer on {self.origin} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Control surface, for tests and benchmarks.
    def stats(self) -> dict:
        return httpx.get(f"{self.origin}/_sandbox/stats").json()

    def reset(self) -> None:
        httpx.post(f"{self.origin}/_sandbox/reset").raise_for_status()

    def faults(self, api: str, plan: dict) -> None:
        httpx.post(f"{self.origin}/_sandbox/faults/{api}", json=plan).raise_for_status()

    def set_revision(self, api: str, revision: int) -> None:
        httpx.post(f"{self.origin}/_sandbox/revision/{api}", json={"revision": revision}).raise_for_status()

    def base_urls(self) -> dict[str, str]:
        return base_urls(self.origin)
