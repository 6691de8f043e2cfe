"""The embedded default S3: moto's server in a background process on localhost.

Its objects live in memory; every request is also recorded in the data folder and replayed when
the server has to be started again, so the embedded repository survives a reboot. Each data
folder has a server of its own, on a free port written down in the folder.
"""

from __future__ import annotations

import base64
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        # An AF_INET socket's name is (host, port); typeshed types it Any, as it depends on the family.
        port: int = sock.getsockname()[1]
        return port


def is_serving(endpoint: str) -> bool:
    # Not /moto-api/data.json: it walks every model, and fails (500) once after each new multipart
    # part (moto 5.2), so a server holding multipart uploads looked down and got a twin.
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/config", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def start_moto(
    port: int,
    log_path: Path | None = None,
    recording: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start moto's server on 127.0.0.1:port and wait until it answers."""
    env = {**os.environ, **(extra_env or {})}
    if recording is not None:
        env["MOTO_ENABLE_RECORDING"] = "True"
        env["MOTO_RECORDER_FILEPATH"] = str(recording)
    # The child gets its own copy of the log's descriptor, so ours can close once Popen returns.
    with open(log_path, "ab") if log_path else nullcontext(subprocess.DEVNULL) as log:
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


@dataclass(frozen=True)
class EmbeddedS3:
    endpoint: str
    pid: int

    def stop(self) -> None:
        """Stop the server; its recording stays, for the next start to replay."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _server_file(data_dir: Path) -> Path:
    return data_dir / "s3-server.json"


def _last_server(data_dir: Path) -> EmbeddedS3 | None:
    """The server the data folder last had, up or not."""
    try:
        return EmbeddedS3(**json.loads(_server_file(data_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running_embedded_s3(data_dir: Path) -> EmbeddedS3 | None:
    """The data folder's embedded server, when it is up."""
    server = _last_server(data_dir)
    return server if server is not None and is_serving(server.endpoint) else None


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    # Two commands starting at once must not start two servers recording into one file.
    with open(data_dir / "s3-server.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_embedded_s3(data_dir: Path) -> str:
    """The endpoint of the data folder's own embedded S3, started (and restored) when it is not
    running. Each data folder has its own server on a free port, remembered in the folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        running = running_embedded_s3(data_dir)
        if running is not None:
            return running.endpoint
        return start_embedded_s3(data_dir).endpoint


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the server binds: a port whose last connections are closing is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_embedded_s3(data_dir: Path) -> EmbeddedS3:
    """A new embedded server for the data folder, holding what the folder's recording holds.

    It listens on the port the folder's server had before when that port is free, so the
    folder's endpoint stays the same from one start to the next."""
    data_dir.mkdir(parents=True, exist_ok=True)
    recording = (data_dir / "s3-recording.jsonl").resolve()
    saved = recording.with_suffix(".replay")
    if saved.exists():
        # A replay was interrupted: the saved log is whole, the new one is not.
        recording.unlink(missing_ok=True)
    elif recording.exists() and recording.stat().st_size:
        recording.replace(saved)
    last = _last_server(data_dir)
    remembered = urlsplit(last.endpoint).port if last is not None else None
    port = remembered if remembered is not None and _is_free(remembered) else free_port()
    process = start_moto(port, data_dir / "s3-server.log", recording)
    server = EmbeddedS3(f"http://127.0.0.1:{port}", process.pid)
    if saved.exists():
        _replay(server.endpoint, saved)
        saved.unlink()
    _server_file(data_dir).write_text(json.dumps(asdict(server)))
    return server


# Requests that change nothing need not be replayed.
_READS = frozenset({"GET", "HEAD"})
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding"})


class _UploadIds:
    """The upload ids of the recording, mapped to those the new server gives on the replay.

    A replayed CreateMultipartUpload gets a new id, while the recorded UploadPart(Copy),
    CompleteMultipartUpload and AbortMultipartUpload name the old one; they would all fail with
    NoSuchUpload and the object would be lost. The recording holds requests, not answers, so the
    create an old id came from is inferred: the first request naming an unknown id on an object
    claims the latest unclaimed create of that object (a client goes on with the answer of its
    last create; a create retried after a lost answer leaves the earlier upload unused)."""

    def __init__(self) -> None:
        self._new: dict[str, str] = {}
        self._unclaimed: dict[str, list[str]] = {}

    def created(self, path: str, answer: bytes) -> None:
        try:
            new_id = ElementTree.fromstring(answer).findtext("{*}UploadId")
        except ElementTree.ParseError:
            return
        if new_id:
            self._unclaimed.setdefault(path, []).append(new_id)

    def rewrite(self, path: str, query: str) -> str:
        """The query with its recorded uploadId replaced by the new server's."""
        pairs = query.split("&")
        for index, pair in enumerate(pairs):
            name, _, value = pair.partition("=")
            if name != "uploadId":
                continue
            old_id = unquote(value)
            if old_id not in self._new and self._unclaimed.get(path):
                self._new[old_id] = self._unclaimed[path].pop()
            # An id with no create to claim (its create was refused) stays, and fails as it must.
            pairs[index] = f"uploadId={quote(self._new.get(old_id, old_id), safe='')}"
        return "&".join(pairs)


def _is_create_multipart(method: str, query: str) -> bool:
    return method == "POST" and "uploads" in (pair.partition("=")[0] for pair in query.split("&"))


def _replay(endpoint: str, saved: Path) -> None:
    """Send the saved requests that changed the state to the new server, in order; it records
    them again. (moto's own replay endpoint restores nothing in server mode, moto 5.2.)

    The order also keeps UploadPartCopy after the objects it copies from, and the parts' ETags in
    a CompleteMultipartUpload body still match: they are the parts' MD5s, the same bytes again."""
    server = urlsplit(endpoint)
    # http.client sends the headers as recorded; urllib would add a form Content-Type to bodies.
    connection = http.client.HTTPConnection(server.hostname or "127.0.0.1", server.port, timeout=60)
    upload_ids = _UploadIds()
    try:
        with saved.open() as rows:
            for line in rows:
                row = json.loads(line)
                if row["method"] in _READS:
                    continue
                url = urlsplit(row["url"])
                # The raw path (bucket and key, as the project addresses buckets by path) names the object.
                query = upload_ids.rewrite(url.path, url.query) if "uploadId=" in url.query else url.query
                body = row.get("body") or ""
                data = base64.b64decode(body) if row.get("body_encoded") in (True, "True") else body.encode()
                headers = {name: value for name, value in row["headers"].items() if name.lower() not in _NOT_FORWARDED}
                # A refusal is replayed as it happened the first time: nothing to do about it.
                connection.request(row["method"], url.path + (f"?{query}" if query else ""), data, headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status == 200 and _is_create_multipart(row["method"], url.query):
                    upload_ids.created(url.path, answer)
                # moto closes every connection after its answer.
                connection.close()
    finally:
        connection.close()
