"""Progress for long steps: a line when a step starts, and a line every few seconds while it runs.

A first `builder run` installs Label Studio (a minute or more): a person
watching a terminal that stays silent that long cannot tell work from a hang, so no step of it stays silent
for more than `HEARTBEAT_SECONDS` (issue 27, point 8)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

HEARTBEAT_SECONDS = 5.0
_ACTIVE: list[threading.Event] = []  # the heartbeats running now, outermost first: only the innermost beats
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def heartbeat(
    log: Callable[[str], None],
    doing: str,
    every: float | None = None,
    detail: Callable[[], str] = lambda: "",
) -> Iterator[None]:
    """While the block runs, log `    ... doing: N s` every `every` seconds (with `detail()`, when it says
    something: the installer's last line, say), from a daemon thread that stops with the block."""
    every = HEARTBEAT_SECONDS if every is None else every
    started = time.monotonic()
    done = threading.Event()
    with _ACTIVE_LOCK:
        _ACTIVE.append(done)

    def beat() -> None:
        while not done.wait(every):
            with _ACTIVE_LOCK:
                innermost = _ACTIVE[-1] is done
            if innermost:  # a step inside this one (the install inside `builder run`'s step) says more
                extra = detail()
                log(f"    ... {doing}: {time.monotonic() - started:.0f} s" + (f" ({extra})" if extra else ""))

    thread = threading.Thread(target=beat, name=f"heartbeat: {doing}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        with _ACTIVE_LOCK:
            _ACTIVE.remove(done)


class Steps:
    """Numbered steps with the seconds since the first one: `[  12 s] 3/7 push ...`."""

    def __init__(self, log: Callable[[str], None], total: int) -> None:
        self.log, self.total, self.number = log, total, 0
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, what: str) -> None:
        self.number += 1
        self.log(f"[{self.elapsed():4.0f} s] {self.number}/{self.total} {what}")

    def note(self, what: str) -> None:
        """A line under the current step (a count, a warning), not a step of its own."""
        self.log(f"    {what}")

    @contextlib.contextmanager
    def running(self, what: str, doing: str, every: float | None = None) -> Iterator[None]:
        """A step whose work may take long: its line, then heartbeats until it ends."""
        self.step(what)
        with heartbeat(self.log, doing, every):
            yield
