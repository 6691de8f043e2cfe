"""Fixtures of the archive tests: a stack whose project's files were really moved (archive grace
0, so their old objects are GLACIER archives in the default bucket), configured through COSTALLOC_*
as the commands read it in production, and a way to slow down moto's restores."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from faults.repository import Repo, make_repo

from costalloc_pipeline.config import Settings
from costalloc_pipeline.mover.bundle import move_bundle

PROJECT = 10


@dataclass
class Moved:
    repo: Repo
    target: str
    originals: dict[int, bytes]

    @property
    def first(self) -> int:
        return next(iter(self.originals))


@pytest.fixture
def moved(environment: Settings, entities) -> Moved:
    """Two handles of the project moved to its allocation's bucket by a real run of the mover."""
    repo = make_repo(environment, entities)
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    result = move_bundle(repo.context(PROJECT), list(originals))
    assert result.moved_files == 2 and result.archived_objects == 2
    repo.end_run(PROJECT, "run-1")
    return Moved(repo, target, originals)


def _transition(endpoint: str, action: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/{action}", data=json.dumps(body).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def slow_restores(s3_endpoint: str) -> Iterator[None]:
    """moto's restores, which complete at once by default, take a second in progress."""
    _transition(
        s3_endpoint,
        "set-transition",
        {"model_name": "s3::keyrestore", "transition": {"progression": "time", "seconds": 1}},
    )
    yield
    _transition(s3_endpoint, "unset-transition", {"model_name": "s3::keyrestore"})
