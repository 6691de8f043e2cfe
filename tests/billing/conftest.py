"""A small repository with moves done (archives in the ledger), and the COSTALLOC_* environment the
commands read, pointed at moto's server for S3, Cost Explorer and CloudWatch alike."""

from __future__ import annotations

import pytest
from faults.repository import Repo, make_repo

from costalloc_pipeline.config import Settings
from costalloc_pipeline.mover.bundle import move_bundle

PROJECT = 10
OTHER = 20
NAMESPACE = "costalloc/test"


@pytest.fixture
def repo(environment: Settings, entities) -> Repo:
    """Project 10 in `genomics` with 3 handles moved (their sources archived in the default bucket)
    and 2 still in the default bucket; project 20 in `imaging`, with nothing moved yet."""
    repo = make_repo(environment, entities)
    repo.project(PROJECT, "genomics")
    moved = repo.add_handles(3)
    move_bundle(repo.context(PROJECT), list(moved))
    repo.add_handles(2)
    repo.project(OTHER, "imaging")
    repo.add_handle(b"x" * 500, project_id=OTHER)
    return repo
