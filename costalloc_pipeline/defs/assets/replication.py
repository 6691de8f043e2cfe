"""The replica tables, refreshed incrementally from the repository database (full refresh on demand)."""

import dagster as dg

from costalloc_pipeline.defs.resources.databases import Database
from costalloc_pipeline.replica.refresh import (
    ReplicationResult,
    refresh_entity_replication,
    refresh_file_replication,
)


class ReplicationConfig(dg.Config):
    # Empties the replica table and reloads it: also drops rows deleted from the repository.
    full_refresh: bool = False


def _metadata(result: ReplicationResult) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "rows_upserted": dg.MetadataValue.int(result.rows_upserted),
        "rows_read": dg.MetadataValue.int(result.rows_read),
        "total_rows": dg.MetadataValue.int(result.total_rows),
        "full_refresh": dg.MetadataValue.bool(result.full_refresh),
        "analyzed": dg.MetadataValue.bool(result.analyzed),
    }
    if result.total_bytes is not None:
        metadata["total_bytes"] = dg.MetadataValue.int(result.total_bytes)
    if result.high_water is not None:
        metadata["high_water"] = dg.MetadataValue.text(result.high_water.isoformat())
    return metadata


@dg.asset(
    group_name="replica",
    kinds={"sql"},
    description="One row per version of every file entity: entity, version, project and file handle.",
)
def entity_replication(config: ReplicationConfig, repository: Database, replica: Database) -> dg.MaterializeResult:
    result = refresh_entity_replication(repository.engine, replica.engine, config.full_refresh)
    return dg.MaterializeResult(metadata=_metadata(result))


@dg.asset(
    group_name="replica",
    kinds={"sql"},
    description="The repository's file handles (FILES columns), previews included.",
)
def file_replication(config: ReplicationConfig, repository: Database, replica: Database) -> dg.MaterializeResult:
    result = refresh_file_replication(repository.engine, replica.engine, config.full_refresh)
    return dg.MaterializeResult(metadata=_metadata(result))


defs = dg.Definitions(assets=[entity_replication, file_replication])
