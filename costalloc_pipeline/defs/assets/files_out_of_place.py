"""Per project: the handles in repository-managed storage that are not in the project's target bucket."""

from typing import Any

import dagster as dg
import pandas as pd

from costalloc_pipeline.defs.assets.replication import entity_replication, file_replication
from costalloc_pipeline.defs.partitions import project_id_of, projects
from costalloc_pipeline.defs.resources.databases import Database
from costalloc_pipeline.placement.misplaced import OutOfPlace, find_out_of_place
from costalloc_pipeline.placement.rule import load_placement

PREVIEW_ROWS = 20
_COLUMN_TYPES = {"Int64": "int", "int64": "int", "bool": "bool", "boolean": "bool"}


def _plain(value: Any) -> str | int | float | bool | None:
    """A DataFrame cell as the plain Python value Dagster's table metadata accepts."""
    if pd.isna(value):
        return None
    plain: str | int | float | bool = value.item() if hasattr(value, "item") else value
    return plain


def preview_table(frame: pd.DataFrame, limit: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, _COLUMN_TYPES.get(str(dtype), "string")) for name, dtype in frame.dtypes.items()]
    )
    records = [
        dg.TableRecord({name: _plain(value) for name, value in row.items()})
        for row in frame.head(limit).to_dict("records")
    ]
    return dg.MetadataValue.table(records, schema=schema)


def out_of_place_metadata(found: OutOfPlace) -> dict[str, dg.MetadataValue]:
    to_move, conflicts = found.to_move, found.conflicts
    return {
        "project": dg.MetadataValue.text(f"syn{found.project_id}"),
        "target_bucket": dg.MetadataValue.text(found.target_bucket),
        # Plotted over time by the UI: the project's progress toward zero.
        "files": dg.MetadataValue.int(len(to_move)),
        "bytes": dg.MetadataValue.int(int(to_move["content_size"].sum())),
        "previews": dg.MetadataValue.int(int(to_move["is_preview"].sum())),
        "conflicts": dg.MetadataValue.int(int(conflicts["file_handle_id"].nunique())),
        "conflict_bytes": dg.MetadataValue.int(int(conflicts.drop_duplicates("file_handle_id")["content_size"].sum())),
        "preview": preview_table(to_move),
        "conflicting_handles": preview_table(conflicts),
    }


@dg.asset(
    partitions_def=projects,
    deps=[entity_replication, file_replication],
    io_manager_key="parquet_io_manager",
    group_name="relocation",
    kinds={"sql", "parquet"},
    description=(
        "Handles of the project (all versions of its file entities, and their previews) in "
        "repository-managed storage but not in its target bucket. Handles another project wants "
        "in a different bucket are left out and listed as conflicts."
    ),
)
def files_out_of_place(
    context: dg.AssetExecutionContext, repository: Database, replica: Database
) -> dg.Output[pd.DataFrame]:
    project_id = project_id_of(context.partition_key)
    found = find_out_of_place(replica.engine, project_id, load_placement(repository.engine))
    if len(found.conflicts):
        context.log.warning(
            f"{found.conflicts['file_handle_id'].nunique()} handles of syn{project_id} are shared with "
            "projects whose files belong in another bucket; they stay where they are"
        )
    return dg.Output(found.to_move, metadata=out_of_place_metadata(found))


defs = dg.Definitions(assets=[files_out_of_place])
