"""Fixtures of the fault tests: the repository, and a fault-injecting proxy in front of moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from costalloc_pipeline.config import Settings

from .proxy import FaultProxy
from .repository import Repo, make_repo


@pytest.fixture
def repo(settings: Settings, entities) -> Repo:
    return make_repo(settings, entities)


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(s3_endpoint) as running:
        yield running
