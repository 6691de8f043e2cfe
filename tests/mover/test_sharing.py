"""The shared request pool: nested work on one pool never deadlocks and never exceeds the pool."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from costalloc_pipeline.mover.sharing import run_all


class Gauge:
    """How many works run at once, at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def work(self, value: int) -> int:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.01)
        with self._lock:
            self.now -= 1
        return value


def test_results_come_back_in_order() -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert run_all(pool, [lambda i=i: i * i for i in range(10)]) == [i * i for i in range(10)]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_objects_and_their_parts_share_one_pool(workers: int) -> None:
    # Every worker runs an object whose parts go to the same pool: with pools of their own this
    # would be workers x parts requests in flight; with a naive shared pool a worker would wait for
    # parts queued behind it forever.
    gauge = Gauge()
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def one_object(number: int) -> list[int]:
            return run_all(pool, [lambda p=p: gauge.work(number * 100 + p) for p in range(6)])

        objects = list(pool.map(one_object, range(3 * workers)))
    assert objects == [[n * 100 + p for p in range(6)] for n in range(3 * workers)]
    assert 1 <= gauge.most <= workers


def test_every_work_runs_and_the_first_failure_is_raised() -> None:
    ran: list[int] = []

    def work(number: int) -> int:
        ran.append(number)
        if number in (2, 4):
            raise ValueError(f"part {number}")
        return number

    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(ValueError, match="part 2"):
        run_all(pool, [lambda n=n: work(n) for n in range(6)])
    assert sorted(ran) == list(range(6))
