"""How far a project is from zero misplaced bytes, read from the live repository database.

The check writes nothing to the repository; it makes temporary tables of its own connection, which
a primary (not a read-only standby) allows."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    exists,
    false,
    func,
    insert,
    select,
    true,
)

from costalloc_pipeline.changes import associated_projects
from costalloc_pipeline.placement.rule import (
    Placement,
    live_condition,
    load_placement,
    own_handle_ids,
    preview_holders,
    preview_ids,
    referencing_holders,
    repository_references,
)
from costalloc_pipeline.placement.session import looked_up_by_key, read_in_bulk, tune_for_planning
from costalloc_pipeline.schema.ddl import is_mysql
from costalloc_pipeline.schema.repository import (
    MoveState,
    files,
    move_ledger,
    node,
)
from costalloc_pipeline.schema.temporary import (
    analyze_temporary,
    create_temporary,
    create_temporary_as,
    drop_temporary,
    scratch,
    temporary_table,
)


@dataclass(frozen=True)
class Progress:
    project_id: int
    target_bucket: str
    misplaced_files: int
    misplaced_bytes: int
    placed_files: int
    placed_bytes: int
    # Misplaced handles that another project, with another target, also references: never moved.
    conflict_files: int
    conflict_bytes: int
    moved_bytes: int
    # Misplaced handles whose last move attempt failed verification or copy: they need a person.
    failed_files: int

    @property
    def percent_done(self) -> float:
        total = self.placed_bytes + self.misplaced_bytes
        return 100.0 if total == 0 else round(100.0 * self.placed_bytes / total, 2)

    def after_moving(self, files: int, size: int) -> Progress:
        """This progress once `files` more handles of `size` bytes in all are in the target bucket:
        a run's estimate between bundles, without reading every handle of the project again."""
        return replace(
            self,
            misplaced_files=max(0, self.misplaced_files - files),
            misplaced_bytes=max(0, self.misplaced_bytes - size),
            placed_files=self.placed_files + files,
            placed_bytes=self.placed_bytes + size,
            moved_bytes=self.moved_bytes + size,
        )


# Bound parameters per statement of handle ids: well under SQLite's limit.
IDS_PER_QUERY = 1000


# The check runs on the live repository, whose statistics may be stale (autovacuum off or behind):
# PostgreSQL then estimates a project that arrived since the last ANALYZE at one row and runs nested
# loops over its million handles (37 s for the benchmark's million-version project). The project's
# handle ids are first put in temporary tables whose real sizes the planner is given, so every later
# join is planned on the true numbers whatever the repository's own statistics say.
def _handle_tables(keyed: bool) -> tuple[Table, Table, Table]:
    """The temporary tables of a project's handles: the ids its versions name, their previews, and
    each handle once with what the rule needs of it.

    Keyed by handle id on MySQL, whose joins are nested loops that need an index to look into (a join
    with an unindexed one read it whole for every row of files: minutes for 100,000 handles). Not on
    PostgreSQL, which hashes them, and for which an index of a million ids inserted in no order costs
    seconds. SQLite indexes a join's table by itself when it has none."""

    def handle_id() -> Column[int]:
        return Column("id", BigInteger, primary_key=keyed, autoincrement=False, nullable=False)

    return (
        temporary_table("costalloc_own_handles", handle_id()),
        temporary_table("costalloc_previews", handle_id()),
        temporary_table(
            "costalloc_project_handles",
            handle_id(),
            Column("preview_id", BigInteger),
            # An AVAILABLE S3 handle in managed storage.
            Column("live", Boolean, nullable=False),
            # In the project's target bucket.
            Column("placed", Boolean, nullable=False),
            # content_size, 0 when unknown.
            Column("size", BigInteger, nullable=False),
        ),
    )


def _fill(conn: Connection, table: Table, rows: Select[Any]) -> None:
    conn.execute(insert(table).from_select([column.name for column in table.columns], rows))


@contextmanager
def _project_handles(conn: Connection, project_id: int, placement: Placement) -> Iterator[Table]:
    """The project's handles table filled, as the rule says: the handles its file versions
    name, then their previews. The repository's files are read once per handle."""
    target = placement.target_bucket(project_id)

    def rows_of(ids: Table | Select[tuple[int]]) -> Select[Any]:
        rows = select(
            files.c.id,
            files.c.preview_id,
            func.coalesce(live_condition(files, placement.managed_buckets), false()).label("live"),
            func.coalesce(files.c.bucket_name == target, false()).label("placed"),
            func.coalesce(files.c.content_size, 0).label("size"),
        )
        return rows.join(ids, ids.c.id == files.c.id) if isinstance(ids, Table) else rows.where(files.c.id.in_(ids))

    own_table, previews_table, handles = _handle_tables(keyed=is_mysql(conn.dialect))
    own_ids = own_handle_ids(repository_references().subquery(), project_id)
    with ExitStack() as scratches:
        own: FromClause
        if conn.dialect.name == "postgresql":
            # The own handles' rows in one statement that runs on every core (an INSERT ... SELECT
            # runs on one), hashed whatever the repository's statistics say of a project that arrived
            # since its last ANALYZE: 2.5 s against 1.2 s for their ids and 3.4 s for their rows (the
            # benchmark's million-version project, load 1). With their previews in the same
            # statement it took 5.8 s: the union of ids was gathered and joined on one core.
            with read_in_bulk(conn):
                create_temporary_as(conn, handles, rows_of(own_ids))
            analyze_temporary(conn, handles)
            own = handles.alias("own")
        else:
            # Each statement reads every temporary table at most once (MySQL cannot read one twice).
            create_temporary(conn, handles)
            own = scratches.enter_context(scratch(conn, own_table))
            _fill(conn, own, own_ids.distinct())
            analyze_temporary(conn, own)
            _fill(conn, handles, rows_of(own))
        previews = scratches.enter_context(scratch(conn, previews_table))
        # The handles table holds only the own handles yet. A preview that is also one of them is
        # there already.
        own_preview = exists().where(own.c.id == handles.c.preview_id)
        _fill(conn, previews, preview_ids(handles).where(~own_preview).distinct())
        analyze_temporary(conn, previews)
        # A quarter of a million previews of a million-version project looked up by id took 1.1 s
        # against 2.4-3.4 s for the hash join with a scan of the 1.1 GB files table that PostgreSQL
        # prefers (benchmark's repository of 3 million versions).
        with looked_up_by_key(conn):
            _fill(conn, handles, rows_of(previews))
    analyze_temporary(conn, handles)
    yield handles
    drop_temporary(conn, handles)


def _sizes(conn: Connection, handles: Table, handle_ids: Collection[int]) -> int:
    wanted = sorted(handle_ids)
    return sum(
        int(
            conn.execute(
                select(func.coalesce(func.sum(handles.c.size), 0)).where(
                    handles.c.id.in_(wanted[start : start + IDS_PER_QUERY])
                )
            ).scalar_one()
        )
        for start in range(0, len(wanted), IDS_PER_QUERY)
    )


def _holders_table(keyed: bool) -> Table:
    """(holder_id, handle_id) of the misplaced handles (rule.referencing_holders). Keyed on MySQL
    for its nested loops, as `_handle_tables`; a holder of two misplaced handles is there twice."""
    return temporary_table(
        "costalloc_holders",
        Column("holder_id", BigInteger, primary_key=keyed, autoincrement=False, nullable=False),
        Column("handle_id", BigInteger, primary_key=keyed, autoincrement=False, nullable=False),
    )


def _sharing(conn: Connection, project_id: int, handles: Table, misplaced: ColumnElement[bool]) -> dict[int, set[int]]:
    """The other projects that reference each misplaced handle, in the live repository (the replica
    may be stale); only the handles another project references are keys.

    The misplaced handles' holders are gathered first, so that the other projects' references
    (node_revision and node, millions of rows) are read in one pass for both kinds of sharing:
    the two statements of `referencing_projects` took 2.4-3.4 s each on the benchmark's million-
    version project, read node_revision and hashed node each."""
    others = repository_references().where(node.c.project_id != project_id).subquery()
    sharing: dict[int, set[int]] = {}
    with scratch(conn, _holders_table(keyed=is_mysql(conn.dialect))) as holders:
        # Each handle holds itself; each statement reads the handles table once (MySQL cannot read a
        # temporary table twice in one).
        _fill(conn, holders, select(handles.c.id, handles.c.id).where(misplaced))
        through_preview = preview_holders(files, select(handles.c.id).where(misplaced)).subquery()
        # A handle named as its own preview is its own holder already (a second row would break
        # MySQL's key).
        _fill(conn, holders, select(through_preview).where(through_preview.c.holder_id != through_preview.c.handle_id))
        analyze_temporary(conn, holders)
        for handle_id, other in conn.execute(referencing_holders(others, holders)):
            sharing.setdefault(handle_id, set()).add(other)
    return sharing


def project_progress(conn: Connection, project_id: int, placement: Placement) -> Progress:
    """Set-based, so its cost follows the project's size and not a query per thousand handles: the
    project's live handles are gathered once, summed, and only those that another project also
    references (usually none) come back to be judged as conflicts."""
    target = placement.target_bucket(project_id)
    tune_for_planning(conn)
    with _project_handles(conn, project_id, placement) as handles:
        live = handles.c.live == true()
        totals = {
            bool(placed): (int(count), int(size))
            for placed, count, size in conn.execute(
                select(handles.c.placed, func.count(), func.coalesce(func.sum(handles.c.size), 0))
                .where(live)
                .group_by(handles.c.placed)
            )
        }
        misplaced = and_(live, handles.c.placed == false())
        misplaced_ids = select(handles.c.id).where(misplaced)
        sharing = _sharing(conn, project_id, handles, misplaced)
        conflicts = {handle for handle, projects in sharing.items() if placement.conflicting(project_id, projects)}
        failed = set(
            conn.execute(
                select(move_ledger.c.file_handle_id).where(
                    move_ledger.c.project_id == project_id,
                    move_ledger.c.target_bucket == target,
                    move_ledger.c.state == MoveState.FAILED.value,
                    move_ledger.c.file_handle_id.in_(misplaced_ids),
                )
            ).scalars()
        )
        conflict_bytes = _sizes(conn, handles, conflicts)
    moved_bytes = conn.execute(
        select(func.coalesce(func.sum(move_ledger.c.content_size), 0)).where(
            move_ledger.c.project_id == project_id,
            move_ledger.c.target_bucket == target,
            move_ledger.c.state.in_([MoveState.REPOINTED.value, MoveState.DONE.value]),
        )
    ).scalar_one()
    misplaced_files, misplaced_bytes = totals.get(False, (0, 0))
    placed_files, placed_bytes = totals.get(True, (0, 0))
    return Progress(
        project_id=project_id,
        target_bucket=target,
        misplaced_files=misplaced_files - len(conflicts),
        misplaced_bytes=misplaced_bytes - conflict_bytes,
        placed_files=placed_files,
        placed_bytes=placed_bytes,
        conflict_files=len(conflicts),
        conflict_bytes=conflict_bytes,
        moved_bytes=int(moved_bytes),
        failed_files=len(failed - conflicts),
    )


def projects_progress(conn: Connection, project_ids: Iterable[int] | None = None) -> list[Progress]:
    """Each project's progress (by default every associated project's), against one placement read once."""
    placement = load_placement(conn)
    wanted = associated_projects(conn) if project_ids is None else project_ids
    return [project_progress(conn, project_id, placement) for project_id in wanted]
