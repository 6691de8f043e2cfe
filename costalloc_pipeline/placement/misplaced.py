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
# The columns of a conflicting handle itself, before the other projects are joined to it.
CONFLICTING_SCHEMA = pa.schema([OUT_OF_PLACE_SCHEMA.field(name) for name in CONFLICT_COLUMNS[:5]])


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


def sharing_query(project_id: int) -> CompoundSelect[tuple[int, int]]:
    """(file_handle_id, other_project_id): handles of the project, previews included, that another
    project also references, directly or as the preview of one of its own handles."""
    # Only the other projects' references are joined: the project's own (a third of the replica in
    # the benchmark) never enter the union, so there is nothing to deduplicate and drop afterwards.
    others = (
        select(entity_replication.c.file_handle_id, entity_replication.c.project_id)
        .where(entity_replication.c.project_id != project_id)
        .subquery("others")
    )
    # The rule's query once per part of the project's handles (its own, their previews), not once over
    # their UNION: MariaDB cannot semi-join an IN over a UNION, and ran it as a subquery per row of
    # the replica (a 100,000-version project of 300,000 had not finished after 20 minutes).
    parts = cast(list[HandleIdQuery], project_handle_ids(entity_replication, file_replication, project_id).selects)
    # One flat UNION of the four SELECTs: SQLite takes no UNION nested in another.
    return union(
        *(select_ for part in parts for select_ in referencing_projects(others, file_replication, part).selects)
    )


def _concat(blocks: Iterable[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = list(blocks)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _frame(table: pa.Table) -> pd.DataFrame:
    # Nullable integers stay integers (sizes and locations may be NULL); strings stay Arrow-backed,
    # so the frame shares the table's string buffers instead of copying them.
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _out_of_place_blocks(
    conn: Connection, project_id: int, target_bucket: str, managed_buckets: Collection[str]
) -> list[pa.Table]:
    """Every misplaced handle of the project, as OUT_OF_PLACE_SCHEMA tables: the own handles a
    block at a time as they arrived, then the previews.

    One query, so the replica is read once: the project's handles, each with its preview by id (a
    preview that is also one of the project's handles counts as its own)."""
    misplaced: list[pa.Table] = []
    previews: list[pa.Table] = []
    preview_names = [PREVIEW_PREFIX + name for name in HANDLE_SCHEMA.names]
    # Block by block, so only the misplaced rows are kept, never the whole project twice.
    for block in fetch_blocks(conn, own_handles_query(project_id, target_bucket, managed_buckets), OWN_HANDLES_SCHEMA):
        misplaced.append(_flagged(_rows_where(block, HANDLE_SCHEMA.names, "misplaced"), False))
        previews.append(_rows_where(block, preview_names, "preview_misplaced").rename_columns(HANDLE_SCHEMA.names))
    own_ids = pa.chunked_array([block["file_handle_id"] for block in misplaced], pa.int64()).combine_chunks()
    preview = _first_of_each_handle(_concat(previews, HANDLE_SCHEMA).cast(HANDLE_SCHEMA), own_ids)
    return [*misplaced, _flagged(preview, True)]


def _rows_where(block: pa.Table, columns: list[str], flag: str) -> pa.Table:
    """These columns of the block's rows whose flag is set. Only they are copied, and nothing when
    every row is (the usual case of a project whose files have not moved yet)."""
    selected = block.select(columns)
    return selected if pc.all(block[flag]).as_py() else selected.filter(block[flag])


def files_out_of_place(
    replica: Engine | Connection, project_id: int, target_bucket: str, managed_buckets: Collection[str]
) -> pd.DataFrame:
    """Every misplaced handle of the project, conflicts included (OUT_OF_PLACE_SCHEMA columns)."""
    with connected(replica) as conn:
        return _frame(pa.concat_tables(_out_of_place_blocks(conn, project_id, target_bucket, managed_buckets)))


def _first_of_each_handle(handles: pa.Table, except_ids: pa.Array) -> pa.Table:
    """One row per handle id, except those ids: a preview of several handles came once per handle
    (the rows of one id are the same handle, read in one statement), and a preview that is also one
    of the project's own handles is listed as its own. One copy of the rows kept, in arrival order."""
    ids = handles["file_handle_id"].combine_chunks()
    distinct = pc.unique(ids)
    wanted = distinct.filter(pc.invert(pc.is_in(distinct, value_set=except_ids)))
    return handles.take(pc.index_in(wanted, value_set=ids))


def _flagged(handles: pa.Table, is_preview: bool) -> pa.Table:
    flags = pa.repeat(pa.scalar(is_preview, type=pa.bool_()), handles.num_rows)
    return handles.append_column(OUT_OF_PLACE_SCHEMA.field("is_preview"), flags).cast(OUT_OF_PLACE_SCHEMA)


def shared_handles(replica: Engine | Connection, project_id: int) -> pa.Table:
    """(file_handle_id, other_project_id) for the project's handles that other projects also use."""
    with connected(replica) as conn:
        return _concat(fetch_blocks(conn, sharing_query(project_id), SHARING_SCHEMA), SHARING_SCHEMA)


def _disagreeing(sharing: pa.Table, placement: Placement, project_id: int) -> pa.Table:
    """The sharing rows whose other project wants another bucket, with that bucket (CONFLICT_COLUMNS[0, 5:])."""
    target = placement.target_bucket(project_id)
    # Few rows (handles shared across projects): the rule decides each in Python.
    others = [placement.target_bucket(other) for other in sharing["other_project_id"].to_pylist()]
    keep = pa.array([bucket != target for bucket in others], pa.bool_())
    return (
        sharing.filter(keep)
        .append_column("other_target_bucket", pa.array(others, pa.string()).filter(keep))
        .select(["file_handle_id", "other_project_id", "other_target_bucket"])
    )


def split_conflicts(misplaced: list[pa.Table], sharing: pa.Table, placement: Placement, project_id: int) -> OutOfPlace:
    """Pure: a handle another project wants in a different bucket stays where it is, listed as a conflict.

    `misplaced` (OUT_OF_PLACE_SCHEMA tables) is emptied as it is read: each table is let go once its
    rows are sorted out, so a million-row project is never held twice."""
    disagreeing = _disagreeing(sharing, placement, project_id)
    conflict_ids = pc.unique(disagreeing["file_handle_id"].combine_chunks())
    kept: list[pa.Table] = []
    set_apart: list[pa.Table] = []
    while misplaced:
        block = misplaced.pop(0)
        conflicting = pc.is_in(block["file_handle_id"], value_set=conflict_ids)
        if pc.any(conflicting).as_py():
            set_apart.append(block.filter(conflicting).select(CONFLICT_COLUMNS[:5]))
            block = block.filter(pc.invert(conflicting))
        kept.append(block)
    conflicts = (
        _concat(set_apart, CONFLICTING_SCHEMA)
        .join(disagreeing, "file_handle_id")
        .sort_by([("file_handle_id", "ascending"), ("other_project_id", "ascending")])
        .select(CONFLICT_COLUMNS)
    )
    return OutOfPlace(
        project_id=project_id,
        target_bucket=placement.target_bucket(project_id),
        to_move=_frame(_concat(kept, OUT_OF_PLACE_SCHEMA)),
        conflicts=_frame(conflicts),
    )


def find_out_of_place(replica: Engine | Connection, project_id: int, placement: Placement) -> OutOfPlace:
    """The project's misplaced handles, with those shared with differently-placed projects set apart."""
    target = placement.target_bucket(project_id)
    with connected(replica) as conn:
        misplaced = _out_of_place_blocks(conn, project_id, target, placement.managed_buckets)
        # Sharing costs joins over the replica's indexes: skip it when there is nothing to move anyway.
        moving = any(block.num_rows for block in misplaced)
        sharing = shared_handles(conn, project_id) if moving else SHARING_SCHEMA.empty_table()
    return split_conflicts(misplaced, sharing, placement, project_id)
