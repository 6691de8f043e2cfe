"""Partitions of the relocation assets: one per project that ever had a cost allocation, added by
the sensor and never deleted, so a project's history stays on its partition after it leaves."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from costalloc_pipeline.naming import format_entity_id, parse_entity_id

PROJECTS = "projects"

# Partition key = the project's entity id as the repository, the API and the CLI write it: syn123.
projects = dg.DynamicPartitionsDefinition(name=PROJECTS)


def project_partition_key(project_id: int) -> str:
    return format_entity_id(project_id)


def project_id_of(partition_key: str) -> int:
    """The project of a partition key; `syn123` and `123` (the keys of earlier versions) are both
    accepted, like everywhere else a project id is."""
    return parse_entity_id(partition_key)


def projects_with_partitions(keys: Iterable[str]) -> list[int]:
    """The projects whose partition has today's key: an instance may still hold bare-number keys
    of earlier versions, kept for their history; the sensor adds the syn key beside them."""
    return [project_id_of(key) for key in keys if key == project_partition_key(project_id_of(key))]
