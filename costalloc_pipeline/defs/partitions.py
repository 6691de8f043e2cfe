"""Partitions of the relocation assets: one per project with a cost allocation, added by the sensor."""

from __future__ import annotations

import re

import dagster as dg

from costalloc_pipeline.errors import BadRequest

PROJECTS = "projects"
_PROJECT_KEY = re.compile(r"[0-9]{1,19}")

# Partition key = the project id in decimal ("syn" prefix dropped), e.g. "123" for syn123.
projects = dg.DynamicPartitionsDefinition(name=PROJECTS)


def project_partition_key(project_id: int) -> str:
    return str(project_id)


def project_id_of(partition_key: str) -> int:
    if not _PROJECT_KEY.fullmatch(partition_key) or int(partition_key) >= 2**63:
        raise BadRequest(f"partition key {partition_key!r} is not a project id (decimal digits)")
    return int(partition_key)
