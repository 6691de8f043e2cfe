"""A fault-injecting HTTP proxy in front of moto's server.

Each request is classified (CopyObject, UploadPartCopy, HeadObject, ...) and a policy decides its
fate: forwarded untouched, answered 500 or 503 SlowDown without reaching S3, forwarded and then
answered 500 (S3 did the work, the client never hears of it), or the connection dropped before or
after forwarding. A test may also rewrite what S3 answered (a corrupted copy). The client signs
its requests for the proxy's host; moto does not check signatures.
"""

from __future__ import annotations

import enum
import http.client
import random
import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

# Headers that belong to one hop, not to the request or answer being relayed.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te", "upgrade"}
_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class Fault(enum.Enum):
    NONE = "none"
    ERROR_500 = "500 before S3"
    SLOW_DOWN_503 = "503 SlowDown before S3"
    # S3 carried the request out; its answer is lost and replaced by a 500.
    ERROR_500_AFTER = "500 after S3"
    DROP = "connection dropped before S3"
    DROP_AFTER = "connection dropped after S3"


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def bucket(self) -> str:
        return unquote(self.path.lstrip("/").split("/", 1)[0])

    @property
    def key(self) -> str:
        parts = self.path.lstrip("/").split("/", 1)
        return unquote(parts[1]) if len(parts) == 2 else ""

    @property
    def copy_source(self) -> str | None:
        return self.headers.get("x-amz-copy-source")

    @property
    def operation(self) -> str:
        """The S3 operation, as far as the mover and the audit need to tell them apart."""
        if self.method == "PUT" and self.copy_source:
            return "UploadPartCopy" if "partNumber" in self.query else "CopyObject"
        if self.method == "POST" and "uploads" in self.query:
            return "CreateMultipartUpload"
        if self.method == "POST" and "uploadId" in self.query:
            return "CompleteMultipartUpload"
        if self.method == "DELETE" and "uploadId" in self.query:
            return "AbortMultipartUpload"
        if "tagging" in self.query:
            return f"{self.method.title()}ObjectTagging"
        if not self.key:
            return f"{self.method.title()}Bucket"
        return {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
            self.method, self.method
        )

    @property
    def is_archive_copy(self) -> bool:
        """A copy of an object onto itself: the mover's archive step."""
        source = unquote(self.copy_source or "").lstrip("/").split("?", 1)[0]
        return source == f"{self.bucket}/{self.key}"


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def with_body(self, body: bytes) -> UpstreamAnswer:
        return replace(self, body=body)


Policy = Callable[[ProxiedRequest], Fault]
Rewrite = Callable[[ProxiedRequest, UpstreamAnswer], UpstreamAnswer]


def never(_request: ProxiedRequest) -> Fault:
    return Fault.NONE


def a_share(
    share: float,
    faults: Collection[Fault],
    seed: int = 1,
    operations: Collection[str] | None = None,
) -> Policy:
    """Each request (of the given operations, or of all) meets one of `faults` with probability
    `share`; seeded so a failing test fails the same way again."""
    rng = random.Random(seed)
    choices = list(faults)
    lock = threading.Lock()

    def policy(request: ProxiedRequest) -> Fault:
        if operations is not None and request.operation not in operations:
            return Fault.NONE
        with lock:
            return rng.choice(choices) if rng.random() < share else Fault.NONE

    return policy


def the_first(count: int, fault: Fault, operation: str) -> Policy:
    """The first `count` requests of one operation meet `fault`; every later one passes."""
    remaining = [count]
    lock = threading.Lock()

    def policy(request: ProxiedRequest) -> Fault:
        if request.operation != operation:
            return Fault.NONE
        with lock:
            if remaining[0] <= 0:
                return Fault.NONE
            remaining[0] -= 1
            return fault

    return policy


@dataclass
class Traffic:
    """What went through the proxy: operation counts, and the faults injected."""

    operations: Counter = field(default_factory=Counter)
    # Copies of an object onto itself (archive copies), by operation; also counted in `operations`.
    onto_itself: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: ProxiedRequest, fault: Fault) -> None:
        with self.lock:
            self.operations[request.operation] += 1
            if request.copy_source and request.is_archive_copy:
                self.onto_itself[request.operation] += 1
            if fault is not Fault.NONE:
                self.faults[fault] += 1

    @property
    def copies_into_targets(self) -> int:
        return self.operations["CopyObject"] - self.onto_itself["CopyObject"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _request(self) -> ProxiedRequest:
        url = urlsplit(self.path)
        return ProxiedRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )

    def _forward(self, request: ProxiedRequest) -> UpstreamAnswer:
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(request.body))
            upstream.request(self.command, self.path, body=request.body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            return UpstreamAnswer(response.status, response.reason, list(response.getheaders()), body)
        finally:
            upstream.close()

    def _answer(self, answer: UpstreamAnswer) -> None:
        self.send_response(answer.status, answer.reason)
        for name, value in answer.headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        # A HEAD answer carries the object's length and no body.
        length = answer.header("Content-Length") if self.command == "HEAD" else str(len(answer.body))
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _error(self, status: int, body: bytes) -> None:
        self._answer(UpstreamAnswer(status, "", [("Content-Type", "application/xml")], body))

    def _handle(self) -> None:
        request = self._request()
        fault = self.server.policy(request)
        self.server.traffic.record(request, fault)
        if fault is Fault.DROP:
            self.close_connection = True
            return
        if fault is Fault.ERROR_500:
            return self._error(500, _INTERNAL_ERROR)
        if fault is Fault.SLOW_DOWN_503:
            return self._error(503, _SLOW_DOWN)
        answer = self._forward(request)
        if fault is Fault.DROP_AFTER:
            self.close_connection = True
            return
        if fault is Fault.ERROR_500_AFTER:
            return self._error(500, _INTERNAL_ERROR)
        rewrite = self.server.rewrite
        self._answer(rewrite(request, answer) if rewrite else answer)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream_host: str
    upstream_port: int
    policy: Policy
    rewrite: Rewrite | None
    traffic: Traffic


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and relays to `upstream` (moto's endpoint)."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream_host = target.hostname or "127.0.0.1"
        self._server.upstream_port = target.port or 80
        self._server.policy = never
        self._server.rewrite = None
        self._server.traffic = Traffic()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def traffic(self) -> Traffic:
        return self._server.traffic

    def inject(self, policy: Policy, rewrite: Rewrite | None = None) -> None:
        """From now on, decide each request's fate with `policy`; counts start again."""
        self._server.policy = policy
        self._server.rewrite = rewrite
        self._server.traffic = Traffic()

    def heal(self) -> None:
        self.inject(never)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
