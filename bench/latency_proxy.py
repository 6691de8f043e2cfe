"""A TCP proxy in front of moto that delays every HTTP request by D milliseconds: the round trip of a
remote S3, paid by every tool alike, so only requests kept in flight concurrently can hide it.

`with LatencyProxy("127.0.0.1", moto_port, 50) as proxy:` then point a client at `proxy.url`.

Where the delay goes: once per request, before the request's first bytes are passed on to moto.
A keep-alive connection carries many requests one after another (none of the race's clients
pipelines), so a new request is the first chunk from the client on a connection, or the first
chunk from the client after moto has answered on that connection. The rest of a request (its
later chunks, a body) passes at once, and an interim `100 Continue` is not an answer. That puts
D between a client's request and moto seeing it, without parsing HTTP, and without adding D per
chunk of a large body.

The event loop runs in a child process (this file run as a script), not a thread of the caller:
the benchmark measures the CPU of the client process (costalloc's relocation runs in it), and the
proxy's work must not be billed to it. The child inherits the caller's CPU affinity when it
starts, so a proxy entered inside `MotoServer.own_core()` runs on the clients' cores. The child
counts the requests it sees, by HTTP method; the caller asks for them over the child's stdin and
stdout (`requests`, `requests_by_method()`), and gets them and the child's CPU time as it stops.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from types import TracebackType
from typing import IO, Any, Self

# The methods counted one by one; any other goes to OTHER.
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
OTHER = "other"
READ_SIZE = 256 * 1024
STOP_TIMEOUT_SECONDS = 10
INTERIM_RESPONSE = b"HTTP/1.1 100"
HEADERS_END = b"\r\n\r\n"


# The child's answers on stdout, one JSON object a line.
PORT, COUNTS, CPU = "port", "requests", "cpu_seconds"


class ProxyFailed(RuntimeError):
    pass


def _method(first_chunk: bytes) -> str:
    method = first_chunk.split(b" ", 1)[0].decode("ascii", errors="replace")
    return method if method in METHODS else OTHER


class _Connection:
    """One client connection and its upstream connection: two pumps sharing the 'answered' state."""

    def __init__(self, delay: float, counts: Counter[str]) -> None:
        self.delay = delay
        self.counts = counts
        # True when the next chunk from the client starts a new request.
        self.answered = True
        # The bytes so far of an interim answer (`100 Continue`) from the server, while in one.
        self.interim: bytes | None = None

    async def client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(READ_SIZE):
            if self.answered:
                self.answered = False
                self.counts[_method(chunk)] += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
            writer.write(chunk)
            await writer.drain()
        _half_close(writer)

    async def server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(READ_SIZE):
            # Set before the bytes go on, so the client's next request (sent only after it read
            # this answer) finds it set.
            if self._answers(chunk):
                self.answered = True
            writer.write(chunk)
            await writer.drain()
        _half_close(writer)

    def _answers(self, chunk: bytes) -> bool:
        """Whether the chunk holds bytes of the real answer, not only of a `100 Continue` (whose
        status line and blank line may come in separate chunks)."""
        if self.interim is None:
            if not chunk.startswith(INTERIM_RESPONSE):
                return True
            self.interim = b""
        self.interim += chunk
        end = self.interim.find(HEADERS_END)
        if end < 0:
            return False
        rest = self.interim[end + len(HEADERS_END) :]
        self.interim = None
        return bool(rest) and self._answers(rest)


def _half_close(writer: asyncio.StreamWriter) -> None:
    # The peer may be gone already; its own pump then ends too.
    if writer.can_write_eof() and not writer.is_closing():
        try:
            writer.write_eof()
        except OSError:
            writer.close()


def _say(out: IO[str], **message: object) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


async def _serve(upstream: tuple[str, int], delay: float) -> None:
    counts: Counter[str] = Counter()
    connections: set[asyncio.Task[None]] = set()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        pair = _Connection(delay, counts)
        try:
            await asyncio.gather(
                pair.client_to_server(client_reader, server_writer),
                pair.server_to_client(server_reader, client_writer),
            )
        except (OSError, asyncio.CancelledError):
            # A reset connection, or the proxy stopping: nothing to pass on any more.
            pass
        finally:
            server_writer.close()
            client_writer.close()

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        connections.add(task)
        task.add_done_callback(connections.discard)

    server = await asyncio.start_server(track, "127.0.0.1", 0, backlog=1024)
    # The CPU of proxying only, not of this interpreter's start.
    cpu_at_start = time.process_time()
    _say(sys.stdout, **{PORT: server.sockets[0].getsockname()[1]})
    # Each line from the caller asks for the counts; the end of stdin stops the proxy.
    control = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(control), sys.stdin)
    while await control.readline():
        _say(sys.stdout, **{COUNTS: dict(counts)})
    server.close()
    for task in list(connections):
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)
    await server.wait_closed()
    _say(sys.stdout, **{COUNTS: dict(counts), CPU: time.process_time() - cpu_at_start})


class LatencyProxy:
    """The proxy in a child process while the block runs; `.port` and `.url` once entered."""

    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float) -> None:
        if delay_ms < 0:
            raise ValueError(f"delay_ms must not be negative, got {delay_ms}")
        self.upstream = (upstream_host, upstream_port)
        self.delay_ms = delay_ms
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None
        # What the child said as it stopped: its request counts and CPU seconds.
        self._final: dict[str, Any] = {}

    @property
    def port(self) -> int:
        if self._port is None:
            raise ProxyFailed("the proxy is not running; use it as a context manager")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ProxyFailed("the proxy is not running")
        return self._process.pid

    def __enter__(self) -> Self:
        self._final = {}
        command = [sys.executable, __file__, self.upstream[0], str(self.upstream[1]), str(self.delay_ms)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self._port = int(self._read()[PORT])
        except ProxyFailed:
            self.__exit__(None, None, None)
            raise
        return self

    def _read(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise ProxyFailed(f"the latency proxy in front of {self.upstream[0]}:{self.upstream[1]} exited")
        message: dict[str, Any] = json.loads(line)
        return message

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        process, self._process, self._port = self._process, None, None
        if process is None:
            return
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        try:
            last = process.stdout.readline()
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            last = ""
        process.stdout.close()
        self._final = json.loads(last) if last else {}

    def requests_by_method(self) -> dict[str, int]:
        """Requests seen so far, by HTTP method; after the block, all of them."""
        if self._process is None:
            return dict(self._final.get(COUNTS, {}))
        assert self._process.stdin is not None
        self._process.stdin.write("\n")
        self._process.stdin.flush()
        return dict(self._read()[COUNTS])

    @property
    def requests(self) -> int:
        return sum(self.requests_by_method().values())

    def cpu_seconds(self) -> float:
        """CPU time the proxy used while serving, known once the block has ended (0 before)."""
        return float(self._final.get(CPU, 0.0))


def main() -> None:
    host, port, delay_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    asyncio.run(_serve((host, port), delay_ms / 1000))


if __name__ == "__main__":
    main()
