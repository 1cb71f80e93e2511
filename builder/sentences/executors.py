"""Where a pure step runs: in this process, in worker processes on this machine, or on Ray.

A step is a plain function of one item (a shard of input files, a chunk of articles) that returns
a picklable result. Every executor's `map(fn, items)` yields the results in the order of `items`,
so what the caller writes from them does not depend on where they were computed: the single
process, `--workers N` and `--engine ray` give the same bytes and the same report.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from builder.errors import BuilderError

RAY_MISSING = "--engine ray needs Ray Data: pip install 'builder[ray]'"
ENGINES = ("local", "ray")


class Executor(Protocol):
    workers: int

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Each item in turn, in this process."""

    workers = 1

    def map(self, fn, items):
        return map(fn, items)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Items spread over `workers` processes on this machine; results in order, a bounded number in flight."""

    def __init__(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        # fork on Linux: a script calling split_files needs no `if __name__ == "__main__"` guard (spawn and
        # forkserver re-import it). A fork-context pool starts all its workers at the first submit, before its
        # own thread, while this process is still small: the read and split steps come after.
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=context)

    def map(self, fn, items):
        from concurrent.futures.process import BrokenProcessPool

        window: deque = deque()
        try:
            for item in items:
                window.append(self._pool.submit(fn, item))
                if len(window) >= 2 * self.workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        except BrokenProcessPool:
            raise BuilderError("a worker process died (out of memory? killed?); nothing was written") from None
        finally:
            for future in window:
                future.cancel()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class RayExecutor:
    """Items as the rows of a Ray Data dataset, mapped on the Ray cluster; results streamed back in order.

    Connects to the cluster at RAY_ADDRESS when it is set (builder's code is shipped to it; the nodes
    need builder's dependencies), uses Ray when this process already started it, or starts a local
    Ray (`workers` CPUs when given) that `close` stops.
    """

    def __init__(self, workers: int | None = None) -> None:
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise BuilderError(RAY_MISSING) from None
        self.workers = workers or 0
        self._started = False
        # Ray's notices (token set-up, deprecations, progress) would mix with the report on stderr
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            options: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            if address:
                import builder

                options["runtime_env"] = {"py_modules": [os.path.dirname(builder.__file__)]}
            elif workers:
                options["num_cpus"] = workers
            try:
                ray.init(address=address, **options)
            except Exception as exc:  # ConnectionError, or Ray's own errors when the cluster is unreachable
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                raise BuilderError(f"cannot start {where}: {str(exc).strip().splitlines()[0]}") from None
            self._started = True

    def map(self, fn, items):
        import ray

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        rows = [{"item": pickle.dumps(item)} for item in items]
        if not rows:
            return
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        options = {"compute": ray.data.TaskPoolStrategy(size=self.workers)} if self.workers else {}
        step = _RayStep(fn)
        try:
            for row in dataset.map(step, **options).iter_rows():
                yield pickle.loads(row["result"])
        except ray.exceptions.RayError as exc:  # a lost node or worker, a task that failed on the cluster
            cause = str(exc).strip().splitlines()
            raise BuilderError(f"Ray: {cause[0] if cause else type(exc).__name__}; nothing was written") from None

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


class _RayStep:
    """`fn` over a row of pickled items (a class, so Ray pickles `fn` by reference to builder's module)."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, row: dict) -> dict:
        return {"result": pickle.dumps(self.fn(pickle.loads(row["item"])))}


def make_executor(engine: str = "local", workers: int = 1) -> Executor:
    """`local` with 1 worker: this process; `local` with N > 1: N processes; `ray`: Ray Data (N: its concurrency)."""
    if engine not in ENGINES:
        raise BuilderError(f"unknown engine '{engine}' (expected {' or '.join(ENGINES)})")
    if workers < 1:
        raise BuilderError(f"--workers must be at least 1, not {workers}")
    if engine == "ray":
        return RayExecutor(workers if workers > 1 else None)
    return ProcessExecutor(workers) if workers > 1 else LocalExecutor()
