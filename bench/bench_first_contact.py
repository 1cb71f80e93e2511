"""First contact (issue 27.8): how long from nothing to a loadable dataset, as a new user does it.

From an empty cache (a temporary XDG_CACHE_HOME: no pip or uv cache, no Label Studio, no Hugging Face
cache) and a fresh virtual environment, in a fresh clone of this checkout's HEAD (commit first):

    python3.11 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/builder run

Each command is timed, and so is each step `builder run` announces (`[  12 s] 3/8 push ...`); every line
it prints is timestamped as it arrives, so the longest silence is measured too (goal: none over 5 s
beyond a heartbeat's jitter). Goal: a loadable dataset within 180 s of the start of `pip install -e .`.

The baseline (`--baseline`, on by default) is the pip-only path of before: `builder run` again from
another empty cache, its Label Studio installed by pip (BUILDER_INSTALLER=pip), in the same venv (its
`pip install -e .` is the same command; the new path's time stands for both).

    python bench/bench_first_contact.py [--no-baseline] [--python python3.11] [--keep]

`--first-start` times only a new project's first start of Label Studio (already installed), three ways in one
run: as before (Label Studio runs its migrations), with builder's empty database made from the schema it ships
(a fresh install's first project), and with that database already made (every later project); wall seconds,
and CPU seconds of builder, what it ran and the Label Studio server until it answered.

Needs PyPI (not for --first-start). Stops the Label Studio servers it started; removes its folder unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 180.0
STEP_LINE = re.compile(r"^\[\s*(\d+) s\] (\d+)/(\d+) (.*)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_cpu() -> float:
    """CPU seconds of the children waited for so far (a Label Studio server left running is not counted)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, env: dict, echo: bool = True) -> tuple[float, list[tuple[float, str]]]:
    """Run `command`; its seconds and its output lines, each with the seconds since the start when it came."""
    started, cpu = time.monotonic(), children_cpu()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            if echo:
                print(f"      {lines[-1][0]:6.1f} | {lines[-1][1]}", flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    process.wait()
    reader.join()
    seconds = time.monotonic() - started
    print(f"      {' '.join(command[-3:])}: {seconds:.1f} s, {children_cpu() - cpu:.1f} s CPU", flush=True)
    if process.returncode != 0:
        tail = "\n".join(line for _, line in lines[-15:])
        raise SystemExit(f"{' '.join(command)} failed (status {process.returncode}):\n{tail}")
    return seconds, lines


def steps_of(lines: list[tuple[float, str]], total: float) -> list[tuple[str, float]]:
    """Each announced step of `builder run` and its seconds (until the next step, or the end)."""
    starts = [(at, match.group(4)) for at, line in lines if (match := STEP_LINE.match(line))]
    ends = [at for at, _ in starts[1:]] + [total]
    return [(what, end - at) for (at, what), end in zip(starts, ends)]


def longest_silence(lines: list[tuple[float, str]], total: float) -> float:
    times = [0.0, *(at for at, _ in lines), total]
    return max(b - a for a, b in zip(times, times[1:]))


def builder_run(repo: Path, venv: Path, env: dict) -> dict:
    port = free_port()
    try:
        seconds, lines = timed([str(venv / "bin" / "builder"), "run", "--port", str(port)], repo, env)
    finally:
        subprocess.run([str(venv / "bin" / "builder"), "server", "stop"], cwd=repo, env=env, capture_output=True)
    return {"run": seconds, "steps": steps_of(lines, seconds), "silence": longest_silence(lines, seconds)}


def _server_cpu(pid: int) -> float:
    """CPU seconds of a running process and the children it waited for (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def first_start(how: str, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `server.start` on a new project folder, `how`: "migrations" (as before),
    "restore" (the empty database made from the shipped schema, then copied), "copy" (already made)."""
    from builder.labelstudio import empty_database, server

    seed = empty_database.seed
    if how == "migrations":
        empty_database.seed = lambda *args, **kwargs: False
    own = resource.getrusage(resource.RUSAGE_SELF)
    started, cpu = time.monotonic(), children_cpu() + own.ru_utime + own.ru_stime
    try:
        state = server.start(folder, free_port(), log=lambda message: print(f"      {message}", flush=True))
        seconds = time.monotonic() - started
        own = resource.getrusage(resource.RUSAGE_SELF)
        used = children_cpu() + own.ru_utime + own.ru_stime - cpu + _server_cpu(state.pid)
    finally:
        empty_database.seed = seed
        server.stop(folder)
        with contextlib.suppress(ChildProcessError, UnboundLocalError):
            os.waitpid(state.pid, 0)  # reaped now: its CPU is not counted in the next start's children
    return seconds, used


def first_starts() -> None:
    from builder.labelstudio import empty_database

    work = Path(tempfile.mkdtemp(prefix="builder-first-start-"))
    template = work / "template.sqlite3"
    empty_database.template_path = lambda: template  # a fresh install's: made from the shipped schema below
    try:
        print(f"first starts in {work} (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)", flush=True)
        results = []
        for how in ("migrations", "restore", "copy"):
            print(f"-- first start, {how}", flush=True)
            results.append((how, *first_start(how, work / how)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\na new project's first start (load average now {os.getloadavg()[0]:.1f}); seconds")
    names = {
        "migrations": "Label Studio migrates (before)",
        "restore": "empty database made from the shipped schema, copied",
        "copy": "empty database already made, copied",
    }
    print(f"  {'':<56} {'wall':>7} {'CPU':>7}")
    for how, seconds, cpu in results:
        print(f"  {names[how]:<56} {seconds:7.1f} {cpu:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the Python a new user has (default: this one)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the pip-only path")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--first-start", action="store_true", help="time only a new project's first start")
    args = parser.parse_args()
    if args.first_start:
        first_starts()
        return

    work = Path(tempfile.mkdtemp(prefix="builder-first-contact-"))
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LABEL_STUDIO_", "BUILDER_", "VIRTUAL_ENV", "UV_", "PIP_CACHE_DIR", "HF_"))
    }
    env = {**base_env, "XDG_CACHE_HOME": str(work / "cache")}  # empty: pip's, uv's, builder's, Hugging Face's
    repo, venv = work / "builder", work / "venv"
    print(f"first contact in {work} (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)", flush=True)
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    try:
        print("-- python -m venv", flush=True)
        venv_s, _ = timed([args.python, "-m", "venv", str(venv)], work, env)
        print("-- pip install -e .", flush=True)
        install_s, _ = timed([str(venv / "bin" / "pip"), "install", "--progress-bar", "off", "-e", "."], repo, env)
        print("-- builder run (Label Studio installed by uv)", flush=True)
        new = builder_run(repo, venv, env)
        old = None
        if args.baseline:
            print("-- baseline: builder run from another empty cache, Label Studio installed by pip", flush=True)
            old_repo = work / "builder-baseline"
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(old_repo)], check=True)
            old_env = {**base_env, "XDG_CACHE_HOME": str(work / "cache-baseline"), "BUILDER_INSTALLER": "pip"}
            old = builder_run(old_repo, venv, old_env)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nfirst contact (load average now {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs); seconds")
    print(f"  {'python -m venv':<62} {venv_s:7.1f}")
    print(f"  {'pip install -e .':<62} {install_s:7.1f}")
    baseline = dict(old["steps"]) if old else {}
    print(f"  {'builder run, step by step':<62} {'uv':>7} {'pip (before)':>13}")
    for what, seconds in new["steps"]:
        before = baseline.get(what)
        print(f"    {what[:60]:<60} {seconds:7.1f} {'' if before is None else f'{before:13.1f}'}")
    old_run = "" if old is None else f"{old['run']:13.1f}"
    print(f"  {'builder run':<62} {new['run']:7.1f} {old_run}")
    print(
        f"  {'longest silence in builder run (goal: about 5 s at most)':<62} {new['silence']:7.1f}"
        + ("" if old is None else f" {old['silence']:13.1f}")
    )
    total = install_s + new["run"]
    print(f"  {'pip install -e . && builder run':<62} {total:7.1f}", end="")
    print("" if old is None else f" {install_s + old['run']:13.1f}", end="")
    print(f"   goal <= {GOAL_SECONDS:.0f} s: {'met' if total <= GOAL_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
