"""The OpenAPI document tells the truth, proven from the outside: schemathesis, a third-party fuzzer,
runs every check it has against `costalloc serve` on the embedded default (SQLite and the data
folder's own S3), and a client generated from the document lists, assigns and unassigns."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers.serving import init, run_costalloc, serving

from costalloc_pipeline.embedded import running_embedded_s3

BIN = Path(sys.executable).parent
# Entities of the seeded repository the fuzzer also draws ids from (otherwise nearly every id it
# makes up is unknown, and only the 404 path is tested): projects, a folder and a file in them, and
# one that does not exist.
SEEDED = ["syn1", "syn11", "syn2", "SYN5", "12", "syn15", "syn999999"]


@dataclass(frozen=True)
class Served:
    base: str
    token: str
    data_dir: Path


def _embedded_default(data_dir: Path) -> dict[str, str]:
    """The environment of a newcomer: no COSTALLOC_* setting but the data folder."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("COSTALLOC_")}
    return {**clean, "COSTALLOC_DATA_DIR": str(data_dir), "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("contract") / "data"
    environment = _embedded_default(data_dir)
    token = init(environment)
    seeded = run_costalloc(
        [
            "seed",
            "--projects",
            "2",
            "--folders-per-project",
            "1",
            "--files-per-folder",
            "8",
            "--versions",
            "1",
            "--no-objects",
        ],
        environment,
    )
    assert "projects created: 2 (syn1, syn11)" in seeded, seeded
    try:
        with serving(environment) as (base, _process):
            yield Served(base, token, data_dir)
    finally:
        embedded = running_embedded_s3(data_dir)
        if embedded is not None:
            embedded.stop()


# The client runs first: it needs syn11 as the seed made it, before the fuzzer's assigns and unassigns.
def test_a_client_generated_from_the_document_lists_assigns_and_unassigns(served: Served, tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{served.base}/openapi.json", timeout=30).content)
    generated = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(document), "--meta", "none"],
        env=_embedded_default(served.data_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        from costalloc_client import AuthenticatedClient
        from costalloc_client.api.default import (
            assign_cost_allocation,
            get_cost_allocation,
            list_cost_allocations,
            unassign_cost_allocation,
        )
        from costalloc_client.models import (
            AssignRequest,
            CostAllocation,
            CostAllocationPage,
            Reason,
        )
    finally:
        sys.path.remove(str(tmp_path))

    client = AuthenticatedClient(base_url=served.base, token=served.token)
    assigned = assign_cost_allocation.sync_detailed("syn11", client=client, body=AssignRequest(name="Contract-Lab"))
    assert assigned.status_code in (200, 201) and isinstance(assigned.parsed, CostAllocation)
    assert assigned.parsed.name == "contract-lab" and "syn11" in assigned.parsed.projects

    page = list_cost_allocations.sync(client=client, limit=100)
    assert isinstance(page, CostAllocationPage)
    assert any(allocation.name == "contract-lab" for allocation in page.results)
    found = get_cost_allocation.sync("syn11", client=client)
    assert isinstance(found, CostAllocation) and found.bucket == assigned.parsed.bucket

    assert unassign_cost_allocation.sync_detailed("syn11", client=client).status_code == 204
    refused = assign_cost_allocation.sync_detailed("syn11", client=client, body=AssignRequest(name="no spaces allowed"))
    assert refused.status_code == 400 and isinstance(refused.parsed, Reason) and "name" in refused.parsed.reason


def test_a_fuzzer_with_every_check_finds_no_contract_violation(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    values = ", ".join(f'"{value}"' for value in SEEDED)
    config.write_text(
        f"[dictionaries.entities]\nvalues = [{values}]\n\n"
        '[parameters]\n"path.entity_id" = { dictionary = "entities", probability = 0.5 }\n'
    )
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{served.base}/openapi.json",
        "-H",
        f"Authorization: Bearer {served.token}",
        "--checks",
        "all",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    summary = done.stdout[done.stdout.find("SUMMARY") :]
    assert done.returncode == 0, f"schemathesis found contract violations (its seed replays them):\n{done.stdout}"
    # Every operation the document declares was tested (counted from it: routes come and go).
    operations = sum(len(path) for path in httpx.get(f"{served.base}/openapi.json").json()["paths"].values())
    assert "No issues found" in summary and f"Tested: {operations}" in summary, summary
