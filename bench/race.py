"""The fair move race: every lane talks to moto through the same latency proxy (bench.latency_proxy),
at several delays D, on fresh identical data, lanes alternating, several rounds.

Real S3 answers each request after a round trip; moto on localhost answers at once, so there the
race only measures whose requests cost moto less CPU. Behind the proxy every tool pays D per
request, and keeping requests in flight is what hides it.

For each lane the kernel gives the CPU time of moto, of the client (this process for costalloc, the
child process tree for a peer) and of the proxy; the proxy counts the HTTP requests. moto runs on
one core, the clients and the proxy on the other (MotoServer.own_core).

costalloc runs twice per round: in the versioned archive mode (its default where the bucket keeps
noncurrent versions: every stage's default bucket is versioned, so an archive is a DeleteObject),
and with COSTALLOC_ARCHIVE_MODE=copy (an archive is a copy of the object onto itself).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from bench.dataset import MoveStage, discard, prepare_move
from bench.latency_proxy import LatencyProxy
from bench.peers import PEERS, check_moved, run_peer, unavailable
from bench.relocate import RelocationRun, relocate
from bench.servers import MotoServer, PostgresDatabases
from bench.stats import Spread

COSTALLOC = "costalloc"
COSTALLOC_COPY = "costalloc-copy"
# costalloc's lanes and the settings each changes: the first is the lane the targets judge.
COSTALLOC_LANES: dict[str, dict[str, str]] = {COSTALLOC: {}, COSTALLOC_COPY: {"archive_mode": "copy"}}
LANES = (*PEERS, *COSTALLOC_LANES)
MOTO_HOST = "127.0.0.1"


@dataclass(frozen=True)
class RaceOptions:
    files: int
    object_size: int
    rounds: int
    latencies_ms: tuple[float, ...]
    concurrency: int | None
    # The large-object race (none when large_files is 0).
    large_files: int
    large_object_size: int
    large_latency_ms: float
    # The lanes to run, of LANES (all by default; costalloc's alone while tuning it).
    lanes: tuple[str, ...] = LANES


@dataclass(frozen=True)
class LaneRun:
    seconds: float
    files: int
    object_size: int
    server_cpu_seconds: float
    client_cpu_seconds: float
    proxy_cpu_seconds: float
    # HTTP requests moto was sent through the proxy, by method: retries included, nothing unseen.
    requests: dict[str, int]

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.files * self.object_size / self.seconds / 1e6

    def _per_file_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.files

    @property
    def server_cpu_ms_per_file(self) -> float:
        return self._per_file_ms(self.server_cpu_seconds)

    @property
    def client_cpu_ms_per_file(self) -> float:
        return self._per_file_ms(self.client_cpu_seconds)

    @property
    def proxy_cpu_ms_per_file(self) -> float:
        return self._per_file_ms(self.proxy_cpu_seconds)

    @property
    def requests_per_file(self) -> float:
        return sum(self.requests.values()) / self.files

    @property
    def server_busy_share(self) -> float:
        """The share of the wall time moto spent on the CPU: how busy the lane kept it."""
        return self.server_cpu_seconds / self.seconds


# The figures of a lane run that the report gives as medians over rounds.
FIGURES: dict[str, Callable[[LaneRun], float]] = {
    name: attrgetter(name)
    for name in (
        "files_per_second",
        "megabytes_per_second",
        "client_cpu_ms_per_file",
        "server_cpu_ms_per_file",
        "proxy_cpu_ms_per_file",
        "requests_per_file",
        "server_busy_share",
    )
}


@dataclass
class Heat:
    """Every lane's runs at one delay and one object size."""

    latency_ms: float
    files: int
    object_size: int
    runs: dict[str, list[LaneRun]] = field(default_factory=dict)
    # costalloc's own record of its runs (S3 calls by operation, the mover's outcome), by lane.
    relocations: dict[str, list[RelocationRun]] = field(default_factory=dict)

    def spread(self, lane: str, figure: str) -> Spread:
        return Spread.of([FIGURES[figure](run) for run in self.runs[lane]])

    def ratio(self, peer: str, figure: str = "files_per_second", lane: str = COSTALLOC) -> float:
        """A costalloc lane's median over the peer's."""
        return self.spread(lane, figure).median / self.spread(peer, figure).median

    def peers(self) -> list[str]:
        return [lane for lane in self.runs if lane not in COSTALLOC_LANES]

    def costalloc_lanes(self) -> list[str]:
        return [lane for lane in self.runs if lane in COSTALLOC_LANES]


@dataclass
class RaceResult:
    options: RaceOptions
    heats: list[Heat] = field(default_factory=list)
    large: Heat | None = None
    # Lanes that could not run here, with why.
    unavailable: dict[str, str] = field(default_factory=dict)
    # Which cores moto and the tools ran on.
    placement: str = ""

    def heat_at(self, latency_ms: float) -> Heat | None:
        return next((heat for heat in self.heats if heat.latency_ms == latency_ms), None)


def lane_order(round_number: int, lanes: Sequence[str] = LANES) -> tuple[str, ...]:
    """Each round starts one lane later, so no lane always runs first (on a cold server) or last."""
    shift = round_number % len(lanes)
    return (*lanes[shift:], *lanes[:shift])


def _client_cpu() -> float:
    # This process's threads plus its waited-for children (a peer's whole process tree).
    now = os.times()
    return now.user + now.system + now.children_user + now.children_system


def _through(stage: MoveStage, endpoint: str, **changes: str) -> MoveStage:
    return dataclasses.replace(stage, settings=stage.settings.with_changes(s3_endpoint_url=endpoint, **changes))


def run_lane(lane: str, stage: MoveStage, moto: MotoServer, latency_ms: float) -> tuple[LaneRun, RelocationRun | None]:
    """One move by the lane through a proxy of its own, so the proxy's counts are the lane's."""
    relocation = None
    with LatencyProxy(MOTO_HOST, moto.port, latency_ms) as proxy:
        server_before, client_before = moto.cpu_seconds(), _client_cpu()
        if lane in COSTALLOC_LANES:
            relocation = relocate(_through(stage, proxy.url, **COSTALLOC_LANES[lane]))
            seconds = relocation.seconds
        else:
            seconds = run_peer(lane, stage, proxy.url).seconds
        server_cpu, client_cpu = moto.cpu_seconds() - server_before, _client_cpu() - client_before
    if lane not in COSTALLOC_LANES:
        # Untimed, and straight at moto: not the lane's work.
        check_moved(lane, stage)
    run = LaneRun(
        seconds=seconds,
        files=stage.files,
        object_size=stage.object_size,
        server_cpu_seconds=server_cpu,
        client_cpu_seconds=client_cpu,
        proxy_cpu_seconds=proxy.cpu_seconds(),
        requests=proxy.requests_by_method(),
    )
    return run, relocation


def run_heat(
    heat: Heat,
    lanes: Sequence[str],
    moto: MotoServer,
    databases: PostgresDatabases,
    data_dir: Path,
    options: RaceOptions,
    say: Callable[[str], None],
) -> str:
    """Every lane of the heat, `options.rounds` times; returns the core placement."""
    placement = ""
    heat.runs = {lane: [] for lane in lanes}
    for round_number in range(options.rounds):
        for lane in lane_order(round_number, lanes):
            stage = prepare_move(moto, databases, data_dir, heat.files, heat.object_size, options.concurrency)
            try:
                with moto.own_core() as placement:
                    run, relocation = run_lane(lane, stage, moto, heat.latency_ms)
            finally:
                discard(stage, databases)
            heat.runs[lane].append(run)
            if relocation is not None:
                heat.relocations.setdefault(lane, []).append(relocation)
            say(
                f"D={heat.latency_ms:g} ms, {heat.files} x {heat.object_size} B, round {round_number + 1}/"
                f"{options.rounds} {lane}: {run.files_per_second:.1f} files/s ({run.megabytes_per_second:.1f} MB/s), "
                f"CPU/file moto {run.server_cpu_ms_per_file:.2f} ms, client {run.client_cpu_ms_per_file:.2f} ms, "
                f"proxy {run.proxy_cpu_ms_per_file:.2f} ms; {run.requests_per_file:.2f} requests/file"
            )
    return placement


def run_race(
    moto: MotoServer, databases: PostgresDatabases, data_dir: Path, options: RaceOptions, say: Callable[[str], None]
) -> RaceResult:
    result = RaceResult(options, unavailable=unavailable())
    lanes = [lane for lane in LANES if lane in options.lanes and lane not in result.unavailable]
    for lane, reason in result.unavailable.items():
        say(f"lane {lane} does not run: {reason}")
    started = time.perf_counter()
    for latency_ms in options.latencies_ms:
        heat = Heat(latency_ms, options.files, options.object_size)
        result.placement = run_heat(heat, lanes, moto, databases, data_dir, options, say)
        result.heats.append(heat)
    if options.large_files:
        result.large = Heat(options.large_latency_ms, options.large_files, options.large_object_size)
        run_heat(result.large, lanes, moto, databases, data_dir, options, say)
    say(f"race done in {time.perf_counter() - started:.0f} s")
    return result
