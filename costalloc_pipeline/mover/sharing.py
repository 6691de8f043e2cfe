"""One pool of S3 requests per bundle, shared by the objects and by their parts.

A bundle copies and archives its objects on one pool of `copy_concurrency` threads (pipeline.py;
the resume path's archives on one of their own), within the client's connection pool. A large
object's part copies go to the same pool rather than to a pool of their own, so the requests in
flight never exceed the connections. The object's thread
runs every part that no idle worker has started yet itself, so it only ever waits for parts
already running: no worker can wait on work queued behind it, and the shared pool cannot deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class _Shared(Generic[T]):
    """One piece of work that whichever thread takes it first runs, once."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._taken = False
        self.finished = threading.Event()
        self.result: T | None = None
        self.error: Exception | None = None

    def run_unless_taken(self) -> None:
        with self._lock:
            if self._taken:
                return
            self._taken = True
        try:
            self.result = self._work()
        except Exception as error:  # noqa: BLE001 -- kept for run_all, which raises it in the caller
            self.error = error
        finally:
            self.finished.set()


def run_all(pool: Executor, works: Sequence[Callable[[], T]]) -> list[T]:
    """Every work's result, in order, run on the pool's idle workers and on the calling thread
    (which may itself be one of the pool's workers). Every work runs, even after one fails; then
    the first failure is raised."""
    shared = [_Shared(work) for work in works]
    for item in shared[1:]:
        pool.submit(item.run_unless_taken)
    for item in shared:
        item.run_unless_taken()
    for item in shared:
        item.finished.wait()
    for item in shared:
        if item.error is not None:
            raise item.error
    # Each work finished without an error, so each result is the work's own (T may include None).
    return [cast("T", item.result) for item in shared]
