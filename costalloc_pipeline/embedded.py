"""The embedded default S3: moto's server in a background process on localhost.

Its objects live in memory; every request is also recorded in the data folder and replayed when
the server has to be started again, so the embedded repository survives a reboot.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_PORT = 5055


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_serving(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def start_moto(
    port: int,
    log_path: Path | None = None,
    recording: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start moto's server on 127.0.0.1:port and wait until it answers."""
    env = {**os.environ, **(extra_env or {})}
    if recording is not None:
        env["MOTO_ENABLE_RECORDING"] = "True"
        env["MOTO_RECORDER_FILEPATH"] = str(recording)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not is_serving(endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"moto server did not start on port {port}")
        time.sleep(0.1)
    return process


def ensure_embedded_s3(data_dir: Path, port: int = DEFAULT_PORT) -> str:
    """Return the embedded endpoint, starting (and restoring) the server if it is not running."""
    endpoint = f"http://127.0.0.1:{port}"
    if is_serving(endpoint):
        return endpoint
    data_dir.mkdir(parents=True, exist_ok=True)
    recording = (data_dir / "s3-recording.jsonl").resolve()
    replay_from = None
    if recording.exists() and recording.stat().st_size:
        replay_from = recording.with_suffix(".replay")
        recording.replace(replay_from)
    start_moto(port, data_dir / "s3-server.log", recording)
    if replay_from is not None:
        _replay(endpoint, replay_from, recording)
    return endpoint


def _replay(endpoint: str, saved: Path, recording: Path) -> None:
    # Replaying re-records nothing, so the saved log becomes the new log's start.
    request = urllib.request.Request(
        f"{endpoint}/moto-api/recorder/upload-recording", data=saved.read_bytes(), method="POST"
    )
    urllib.request.urlopen(request, timeout=300).close()
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/recorder/replay-recording", method="POST"), timeout=600
    ).close()
    saved.unlink()
    if not recording.exists():
        raise RuntimeError("embedded S3 recording was not restored")
