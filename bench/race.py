"""The move race: every lane on fresh identical data, lanes alternating, several rounds.

Besides files per second, each lane's CPU time is taken from the kernel: the moto server's, and the
client's (this process for costalloc, the child process for a peer). moto is the bottleneck, so its
CPU milliseconds per file say how much work each tool's requests cost it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.dataset import MoveStage, discard, prepare_move
from bench.peers import run_peer
from bench.relocate import RelocationRun, relocate
from bench.servers import MotoServer, PostgresDatabases

PEERS = ("s5cmd", "awscli")
COSTALLOC = "costalloc"
COSTALLOC_WITH_LATENCY = "costalloc_latency"
LANES = (*PEERS, COSTALLOC, COSTALLOC_WITH_LATENCY)


@dataclass(frozen=True)
class RaceOptions:
    files: int
    object_size: int
    rounds: int
    latency: float
    concurrency: int | None


@dataclass(frozen=True)
class LaneRun:
    files_per_second: float
    server_cpu_ms_per_file: float
    client_cpu_ms_per_file: float

    @property
    def server_busy_share(self) -> float:
        """The share of the wall time moto spent on the CPU: how busy the lane kept the bottleneck."""
        return self.server_cpu_ms_per_file * self.files_per_second / 1000


@dataclass
class RaceResult:
    options: RaceOptions
    lanes: dict[str, list[LaneRun]] = field(default_factory=lambda: {lane: [] for lane in LANES})
    # costalloc's runs without the added latency, for the request counts.
    relocations: list[RelocationRun] = field(default_factory=list)
    # Which cores moto and the tools ran on.
    placement: str = ""


def lane_order(round_number: int) -> tuple[str, ...]:
    """Each round starts one lane later, so no lane always runs first (on a cold server) or last."""
    shift = round_number % len(LANES)
    return LANES[shift:] + LANES[:shift]


def _client_cpu() -> float:
    # This process's threads plus its waited-for children (a peer's whole process tree).
    now = os.times()
    return now.user + now.system + now.children_user + now.children_system


def run_lane(lane: str, stage: MoveStage, moto: MotoServer, latency: float) -> tuple[LaneRun, RelocationRun | None]:
    server_before, client_before = moto.cpu_seconds(), _client_cpu()
    relocation = None
    if lane in PEERS:
        rate = run_peer(lane, stage).files_per_second
    else:
        relocation = relocate(stage, latency if lane == COSTALLOC_WITH_LATENCY else 0.0)
        rate = relocation.files_per_second
    per_file = 1000 / stage.files
    run = LaneRun(
        files_per_second=rate,
        server_cpu_ms_per_file=(moto.cpu_seconds() - server_before) * per_file,
        client_cpu_ms_per_file=(_client_cpu() - client_before) * per_file,
    )
    return run, relocation


def run_race(
    moto: MotoServer, databases: PostgresDatabases, data_dir: Path, options: RaceOptions, say: Callable[[str], None]
) -> RaceResult:
    result = RaceResult(options)
    for round_number in range(options.rounds):
        for lane in lane_order(round_number):
            stage = prepare_move(moto, databases, data_dir, options.files, options.object_size, options.concurrency)
            try:
                with moto.own_core() as result.placement:
                    run, relocation = run_lane(lane, stage, moto, options.latency)
            finally:
                discard(stage, databases)
            result.lanes[lane].append(run)
            if lane == COSTALLOC and relocation is not None:
                result.relocations.append(relocation)
            say(
                f"round {round_number + 1}/{options.rounds} {lane}: {run.files_per_second:.1f} files/s, "
                f"moto {run.server_cpu_ms_per_file:.2f} ms CPU/file, "
                f"client {run.client_cpu_ms_per_file:.2f} ms CPU/file"
            )
    return result
