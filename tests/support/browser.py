"""Headless Chromium from Debian's package (installed by the test when missing; no browser download)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def ensure_chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("chromium is not installed and the tests are not root: apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900,
                   capture_output=True)
    return shutil.which("chromium") or pytest.fail("apt-get installed chromium but it is not on PATH")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([ensure_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=True)


def screenshot(url: str, out: Path, size: str = "1600,1200") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--window-size={size}", f"--screenshot={out}", url])
    return out


def dump_dom(url: str) -> str:
    return _run(["--dump-dom", url]).stdout
