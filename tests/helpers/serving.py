"""`costalloc init` and `costalloc serve` in their own processes, as a user runs them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from costalloc_pipeline.embedded import free_port

COSTALLOC = str(Path(sys.executable).with_name("costalloc"))


def run_costalloc(arguments: list[str], environment: dict[str, str], timeout: float = 600) -> str:
    """The command's stdout; it must succeed."""
    done = subprocess.run(
        [COSTALLOC, *arguments], env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"costalloc {' '.join(arguments)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def init(environment: dict[str, str]) -> str:
    """`costalloc init`; the admin token it prints."""
    printed = run_costalloc(["init"], environment, timeout=120)
    return next(line.rsplit(" ", 1)[1] for line in printed.splitlines() if line.startswith("admin token"))


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"costalloc serve exited with {process.returncode}: {process.stdout.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("costalloc serve did not listen in time")


@contextmanager
def serving(environment: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of `costalloc serve` on a free port, stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [COSTALLOC, "serve", "--port", str(port), "--log-level", "warning"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
