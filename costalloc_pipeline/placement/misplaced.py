"""Which handles of a project sit in repository-managed storage but not in the project's target bucket.

Reads the replica, which may be stale: the mover re-reads every handle before touching it. Target
buckets come from the repository's small association tables, loaded once into a `Placement` and
passed to the replica queries as parameters (the two databases may differ: no cross-database SQL).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, cast

# No pandas-stubs in the environment: pandas is untyped here.
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    FromClause,
    Select,
    false,
    func,
    or_,
    select,
    union,
)

from costalloc_pipeline.placement.arrow_blocks import Rows, fetch_blocks
from costalloc_pipeline.placement.rule import (
    HandleIdQuery,
    Placement,
    connected,
    misplaced_condition,
    project_handle_ids,
    referencing_projects,
)
from costalloc_pipeline.schema.replica import entity_replication, file_replication

HANDLE_SCHEMA = pa.schema(
    [
        pa.field("file_handle_id", pa.int64(), nullable=False),
        pa.field("etag", pa.string(), nullable=False),
        pa.field("bucket_name", pa.string()),
        pa.field("key", pa.string()),
        pa.field("content_size", pa.int64()),
        pa.field("content_md5", pa.string()),
        pa.field("storage_location_id", pa.int64()),
    ]
)
OUT_OF_PLACE_SCHEMA = HANDLE_SCHEMA.append(
    # True for a handle reached through the preview_id of one of the project's handles.
    pa.field("is_preview", pa.bool_(), nullable=False)
)
# A row of the one pass: a handle of the project, whether it is misplaced, then its preview's
# columns (all NULL without one) and whether that preview is misplaced.
PREVIEW_PREFIX = "preview_"
OWN_HANDLES_SCHEMA = pa.schema(
    [
        *HANDLE_SCHEMA,
        pa.field("misplaced", pa.bool_(), nullable=False),
        *(field.with_name(PREVIEW_PREFIX + field.name).with_nullable(True) for field in HANDLE_SCHEMA),
        pa.field("preview_misplaced", pa.bool_(), nullable=False),
    ]
)
SHARING_SCHEMA = pa.schema(
    [pa.field("file_handle_id", pa.int64(), nullable=False), pa.field("other_project_id", pa.int64(), nullable=False)]
)
CONFLICT_COLUMNS = [
    "file_handle_id",
    "bucket_name",
    "key",
    "content_size",
    "is_preview",
    "other_project_id",
    "other_target_bucket",
]


@dataclass(frozen=True)
class OutOfPlace:
    """A project's misplaced handles: those safe to move, and those another project wants elsewhere."""

    project_id: int
    target_bucket: str
    # OUT_OF_PLACE_SCHEMA columns, one row per handle.
    to_move: pd.DataFrame
    # CONFLICT_COLUMNS: one row per misplaced handle and other project whose target bucket differs.
    conflicts: pd.DataFrame


def _project_handles(project_id: int) -> Select[tuple[int]]:
    return select(entity_replication.c.file_handle_id).where(entity_replication.c.project_id == project_id)


def _handle_columns(handles: FromClause, prefix: str = "") -> list[ColumnElement[Any]]:
    columns = [handles.c.id, *(handles.c[name] for name in HANDLE_SCHEMA.names[1:])]
    return [column.label(prefix + name) for column, name in zip(columns, HANDLE_SCHEMA.names, strict=True)]


def own_handles_query(project_id: int, target_bucket: str, managed_buckets: Collection[str]) -> Select[Rows]:
    """One pass over the project's own handles (every version of every file entity), each with its
    preview fetched by id: the rows where the handle or its preview is misplaced."""
    preview = file_replication.alias("preview")
    misplaced = func.coalesce(misplaced_condition(file_replication, target_bucket, managed_buckets), false())
    preview_misplaced = func.coalesce(misplaced_condition(preview, target_bucket, managed_buckets), false())
    return (
        select(
            *_handle_columns(file_replication),
            misplaced.label("misplaced"),
            *_handle_columns(preview, PREVIEW_PREFIX),
            preview_misplaced.label("preview_misplaced"),
        )
        .select_from(file_replication.outerjoin(preview, preview.c.id == file_replication.c.preview_id))
        # A semi-join (IN) rather than a join: many versions share a handle.
        .where(file_replication.c.id.in_(_project_handles(project_id)), or_(misplaced, preview_misplaced))
    )


def sharing_query(project_id: int) -> Select[tuple[int, int]]:
    """(file_handle_id, other_project_id): handles of the project, previews included, that another
    project also references, directly or as the preview of one of its own handles."""
    # The rule's query once per part of the project's handles (its own, their previews), not once over
    # their UNION: MariaDB cannot semi-join an IN over a UNION, and ran it as a subquery per row of
    # the replica (a 100,000-version project of 300,000 had not finished after 20 minutes).
    parts = cast(list[HandleIdQuery], project_handle_ids(entity_replication, file_replication, project_id).selects)
    # One flat UNION of the four SELECTs: SQLite takes no UNION nested in another.
    projects = union(
        *(
            select_
            for part in parts
            for select_ in referencing_projects(entity_replication, file_replication, part).selects
        )
    ).subquery()
    return select(projects.c.file_handle_id, projects.c.project_id).where(projects.c.project_id != project_id)


def _concat(blocks: Iterable[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = list(blocks)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _fetch(replica: Engine | Connection, query: Select[Rows] | CompoundSelect[Rows], schema: pa.Schema) -> pd.DataFrame:
    with connected(replica) as conn:
        return _frame(_concat(fetch_blocks(conn, query, schema), schema))


def _frame(table: pa.Table) -> pd.DataFrame:
    # Nullable integers stay integers (sizes and locations may be NULL); strings stay Arrow-backed.
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def files_out_of_place(
    replica: Engine | Connection, project_id: int, target_bucket: str, managed_buckets: Collection[str]
) -> pd.DataFrame:
    """Every misplaced handle of the project, conflicts included (OUT_OF_PLACE_SCHEMA columns).

    One query, so the replica is read once: the project's handles, each with its preview by id (a
    preview that is also one of the project's handles counts as its own)."""
    misplaced: list[pa.Table] = []
    previews: list[pa.Table] = []
    preview_names = [PREVIEW_PREFIX + name for name in HANDLE_SCHEMA.names]
    with connected(replica) as conn:
        # Block by block, so only the misplaced rows are kept, never the whole project twice.
        for block in fetch_blocks(
            conn, own_handles_query(project_id, target_bucket, managed_buckets), OWN_HANDLES_SCHEMA
        ):
            misplaced.append(block.filter(block["misplaced"]).select(HANDLE_SCHEMA.names))
            previews.append(
                block.filter(block["preview_misplaced"]).select(preview_names).rename_columns(HANDLE_SCHEMA.names)
            )
    own = _concat(misplaced, HANDLE_SCHEMA)
    # A preview of several handles came once per handle.
    preview = _distinct_handles(_concat(previews, HANDLE_SCHEMA).cast(HANDLE_SCHEMA))
    preview = preview.filter(
        pc.invert(pc.is_in(preview["file_handle_id"], value_set=own["file_handle_id"].combine_chunks()))
    )
    return _frame(pa.concat_tables([_flagged(own, False), _flagged(preview, True)]))


def _distinct_handles(handles: pa.Table) -> pa.Table:
    """One row per handle id (the rows of one id are the same handle, read in one statement)."""
    ordered = handles.sort_by("file_handle_id")
    ids = ordered["file_handle_id"].combine_chunks()
    if len(ids) < 2:
        return ordered
    first = pc.not_equal(ids[1:], ids[:-1])
    return ordered.filter(pa.concat_arrays([pa.array([True]), first]))


def _flagged(handles: pa.Table, is_preview: bool) -> pa.Table:
    flags = pa.repeat(pa.scalar(is_preview, type=pa.bool_()), handles.num_rows)
    return handles.append_column(OUT_OF_PLACE_SCHEMA.field("is_preview"), flags).cast(OUT_OF_PLACE_SCHEMA)


def shared_handles(replica: Engine | Connection, project_id: int) -> pd.DataFrame:
    """(file_handle_id, other_project_id) for the project's handles that other projects also use."""
    return _fetch(replica, sharing_query(project_id), SHARING_SCHEMA)


def split_conflicts(
    misplaced: pd.DataFrame, sharing: pd.DataFrame, placement: Placement, project_id: int
) -> OutOfPlace:
    """Pure: a handle another project wants in a different bucket stays where it is, listed as a conflict."""
    target = placement.target_bucket(project_id)
    others = sharing.assign(
        other_target_bucket=pd.Series(
            [placement.target_bucket(int(other)) for other in sharing["other_project_id"]],
            index=sharing.index,
            dtype="str",
        )
    )
    disagreeing = others[others["other_target_bucket"] != target]
    conflicting = misplaced["file_handle_id"].isin(disagreeing["file_handle_id"])
    conflicts = (
        misplaced.loc[conflicting, CONFLICT_COLUMNS[:5]]
        .merge(disagreeing, on="file_handle_id")
        .sort_values(["file_handle_id", "other_project_id"], ignore_index=True)
    )
    # Filtering copies the frame: with a million rows and usually no conflict, skip it.
    to_move = misplaced.loc[~conflicting].reset_index(drop=True) if conflicting.any() else misplaced
    return OutOfPlace(
        project_id=project_id, target_bucket=target, to_move=to_move, conflicts=conflicts[CONFLICT_COLUMNS]
    )


def find_out_of_place(replica: Engine | Connection, project_id: int, placement: Placement) -> OutOfPlace:
    """The project's misplaced handles, with those shared with differently-placed projects set apart."""
    target = placement.target_bucket(project_id)
    with connected(replica) as conn:
        misplaced = files_out_of_place(conn, project_id, target, placement.managed_buckets)
        # Sharing costs a scan of the replica: skip it when there is nothing to move anyway.
        sharing = shared_handles(conn, project_id) if len(misplaced) else _frame(SHARING_SCHEMA.empty_table())
    return split_conflicts(misplaced, sharing, placement, project_id)
