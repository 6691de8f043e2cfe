"""The peers of the race, as a platform team's script would run them: `s5cmd mv`, `aws s3 mv
--recursive` (its default 10 requests in flight, and 64), and `rclone move` (server-side copies; its
default 4 transfers, and 32). Each is pointed at the race's latency proxy and told nothing else
about S3 than the endpoint, the credentials and path-style addressing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.dataset import MoveStage
from costalloc_pipeline.s3 import local_credentials, s3_client

TOOLS_DIR = Path(sys.executable).parent
# The raised setting of the second lane of each tool.
AWSCLI_RAISED_REQUESTS = 64
RCLONE_RAISED_TRANSFERS = 32
RCLONE_REMOTE = "race"
APT_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class PeerRun:
    tool: str
    seconds: float
    files: int

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds


class PeerFailed(RuntimeError):
    pass


def _tool(name: str) -> str:
    path = TOOLS_DIR / name
    if not path.exists():
        raise PeerFailed(f"{name} is not installed beside {sys.executable}; install the bench extra")
    return str(path)


def rclone_path() -> str:
    """Debian's rclone, installed with apt-get when missing; PeerFailed says why it is not there."""
    found = shutil.which("rclone")
    if found:
        return found
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "rclone"]):
        try:
            done = subprocess.run(step, env=apt, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PeerFailed(f"rclone is missing and `{' '.join(step)}` could not run: {error}") from error
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PeerFailed(f"rclone is missing and `{' '.join(step)}` failed: {reason[0]}")
    found = shutil.which("rclone")
    if not found:
        raise PeerFailed("rclone is missing: apt-get installed the package but no rclone is on PATH")
    return found


@dataclass(frozen=True)
class Invocation:
    """One peer's run: the command line, and the files its configuration needs."""

    command: list[str]
    files: dict[Path, str]


def _credentials(stage: MoveStage) -> tuple[str, str]:
    credentials = local_credentials(stage.settings.s3_endpoint_url)
    return (
        credentials.get("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "")),
        credentials.get("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "")),
    )


def _aws_config(scratch: Path) -> Path:
    return scratch / "aws-config"


def _environment(stage: MoveStage, scratch: Path) -> dict[str, str]:
    key_id, secret = _credentials(stage)
    # The race speaks plain HTTP; a CA bundle set for this machine's HTTPS only breaks rclone
    # ("unable to load custom CA bundle").
    inherited = {name: value for name, value in os.environ.items() if name != "AWS_CA_BUNDLE"}
    return {
        **inherited,
        # No profile of this machine's user may change the tools' behaviour (concurrency, retries):
        # the AWS CLI reads only the race's own config file (absent unless the lane writes one).
        "AWS_CONFIG_FILE": str(_aws_config(scratch)),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        "AWS_REGION": stage.settings.s3_region,
        "AWS_DEFAULT_REGION": stage.settings.s3_region,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
    }


def s5cmd(stage: MoveStage, endpoint: str, scratch: Path) -> Invocation:
    return Invocation(
        [
            _tool("s5cmd"),
            "--endpoint-url",
            endpoint,
            "mv",
            f"s3://{stage.source_bucket}/*",
            f"s3://{stage.target_bucket}/",
        ],
        {},
    )


def _awscli(stage: MoveStage, endpoint: str) -> list[str]:
    return [
        _tool("aws"),
        "--endpoint-url",
        endpoint,
        "s3",
        "mv",
        f"s3://{stage.source_bucket}/",
        f"s3://{stage.target_bucket}/",
        "--recursive",
        "--only-show-errors",
    ]


def awscli(stage: MoveStage, endpoint: str, scratch: Path) -> Invocation:
    return Invocation(_awscli(stage, endpoint), {})


def awscli_raised(stage: MoveStage, endpoint: str, scratch: Path) -> Invocation:
    config = f"[default]\ns3 =\n    max_concurrent_requests = {AWSCLI_RAISED_REQUESTS}\n"
    return Invocation(_awscli(stage, endpoint), {_aws_config(scratch): config})


def _rclone(stage: MoveStage, endpoint: str, scratch: Path, transfers: int | None) -> Invocation:
    key_id, secret = _credentials(stage)
    config = scratch / "rclone.conf"
    # Both buckets on one remote: rclone copies server-side and deletes the source.
    remote = "\n".join(
        [
            f"[{RCLONE_REMOTE}]",
            "type = s3",
            "provider = Other",
            "env_auth = false",
            f"access_key_id = {key_id}",
            f"secret_access_key = {secret}",
            f"region = {stage.settings.s3_region}",
            f"endpoint = {endpoint}",
            "force_path_style = true",
            "",
        ]
    )
    command = [
        rclone_path(),
        "--config",
        str(config),
        "move",
        f"{RCLONE_REMOTE}:{stage.source_bucket}",
        f"{RCLONE_REMOTE}:{stage.target_bucket}",
    ]
    if transfers is not None:
        command += ["--transfers", str(transfers)]
    return Invocation(command, {config: remote})


def rclone(stage: MoveStage, endpoint: str, scratch: Path) -> Invocation:
    return _rclone(stage, endpoint, scratch, None)


def rclone_raised(stage: MoveStage, endpoint: str, scratch: Path) -> Invocation:
    return _rclone(stage, endpoint, scratch, RCLONE_RAISED_TRANSFERS)


# Lane name -> how to run it.
PEERS: dict[str, Callable[[MoveStage, str, Path], Invocation]] = {
    "s5cmd": s5cmd,
    "awscli": awscli,
    f"awscli_{AWSCLI_RAISED_REQUESTS}": awscli_raised,
    "rclone": rclone,
    f"rclone_{RCLONE_RAISED_TRANSFERS}": rclone_raised,
}


def _count(client: Any, bucket: str) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


def run_peer(lane: str, stage: MoveStage, endpoint: str) -> PeerRun:
    """Time one move of the stage's objects by the lane's tool through `endpoint`."""
    scratch = stage.settings.data_dir / f"peer-{lane}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    invocation = PEERS[lane](stage, endpoint, scratch)
    for path, text in invocation.files.items():
        path.write_text(text)
    started = time.perf_counter()
    finished = subprocess.run(
        invocation.command, env=_environment(stage, scratch), capture_output=True, text=True, timeout=3600
    )
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise PeerFailed(f"{lane} exited {finished.returncode}: {finished.stderr.strip()[:500]}")
    return PeerRun(lane, seconds, stage.files)


def check_moved(lane: str, stage: MoveStage) -> None:
    """Every object of the stage is in its target bucket and none is left at the source."""
    client = s3_client(stage.settings)
    moved, left = _count(client, stage.target_bucket), _count(client, stage.source_bucket)
    if moved != stage.files or left != 0:
        raise PeerFailed(f"{lane} left {left} objects behind and moved {moved} of {stage.files}")


def unavailable() -> dict[str, str]:
    """The lanes whose tool cannot be had here, with why (rclone is installed when it can be)."""
    try:
        rclone_path()
    except PeerFailed as error:
        return {lane: str(error) for lane in PEERS if lane.startswith("rclone")}
    return {}


def versions() -> dict[str, str]:
    """The peers' own version strings (and moto's), for the report."""
    found = {"moto": version("moto"), "s5cmd_package": version("s5cmd"), "awscli": version("awscli")}
    commands = {"s5cmd": [_tool("s5cmd"), "version"], "aws": [_tool("aws"), "--version"]}
    # The bench's set-up: rclone is installed here when missing, before anything is timed.
    try:
        commands["rclone"] = [rclone_path(), "version"]
    except PeerFailed as error:
        found["rclone_reports"] = str(error)
    for tool, command in commands.items():
        output = subprocess.run(command, capture_output=True, text=True, timeout=60)
        found[f"{tool}_reports"] = (output.stdout or output.stderr).strip().splitlines()[0]
    return found
