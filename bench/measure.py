"""Shared by the bench scripts: run a measured step in a fresh Python process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def peak_mb() -> float:
    """This process's peak resident memory (MB). VmHWM resets at exec, unlike ru_maxrss, which
    would also count the parent's pages at fork."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_child(code: str, *args) -> list[str]:
    """Run `code` with `python -c` (bench/ importable, so it can use peak_mb); its stdout, split."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.split()
