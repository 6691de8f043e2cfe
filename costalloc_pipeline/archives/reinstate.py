"""Make a restored archive a live STANDARD object again and repoint its handle to it, under the
mover's rules (DESIGN.md section 4), with the mover's own steps:

- the project's lease (of every project referencing the handle) is taken, so no relocation run of
  it moves the handle meanwhile; the lease and the project's target are checked again before each
  write and in the transaction of the repoint (fencing.py);
- a ledger row is written before each step takes effect (STARTED before the copy, COPIED with the
  copy's ETag before the repoint, DONE in the repoint's transaction);
- the target key is claimed (claims.py), so no run writes there meanwhile;
- the copy is the mover's copy_object, verified against the handle's size and MD5 before anything
  is repointed; the repoint is the mover's etag-conditional repoint (I4);
- nothing is written over an object another handle names, nor over any live object: a live object
  at the target key is used only when it is the handle's very bytes.

The reinstated object goes to the archive's key in the bucket the placement rule wants for the
handle's projects. The archive itself is left alone (kept for its retention), except where it
already sits at that place: then it is copied onto itself as STANDARD, which is S3's way of making
a restored object permanent.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select, tuple_

from costalloc_pipeline.archives.locate import ArchiveRecord, archive_records, find_archive, restore_status
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import new_etag
from costalloc_pipeline.mover import claims, lease, ledger
from costalloc_pipeline.mover.context import MoveContext, move_context
from costalloc_pipeline.mover.copier import S3Errors, VerificationFailed, copy_object, read_back_matches
from costalloc_pipeline.mover.copy_plan import holds_these_bytes, source_problem
from costalloc_pipeline.mover.fencing import WriteFence, fence
from costalloc_pipeline.mover.handles import Handle, read_handles
from costalloc_pipeline.mover.objects import ObjectFacts, carries_archive_tag, facts_of_head, head_facts
from costalloc_pipeline.mover.repoint import Repoint, repoint
from costalloc_pipeline.placement.rule import live_references, load_placement
from costalloc_pipeline.schema.repository import FileStatus, MoveState, files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Object = tuple[str, str]


@dataclass(frozen=True)
class Reinstated:
    handle_id: int
    # Whether the handle now points at a new live object (False: nothing changed).
    changed: bool
    message: str


class Refused(Exception):
    """The handle cannot be reinstated now; the reason says why (nothing unsafe was written)."""


def live_copy_ok(s3: S3Client, handle: Handle) -> bool:
    """Whether the handle's own object is live and verified: its size and MD5, not archived, not
    tagged for expiry."""
    if not handle.bucket or not handle.key:
        return False
    found = head_facts(s3, handle.bucket, handle.key)
    if found is None or source_problem(handle, found) is not None:
        return False
    if found.md5 is None and handle.md5 and not read_back_matches(s3, handle, found, handle.bucket):
        return False
    return not carries_archive_tag(s3, handle.bucket, handle.key)


def _other_handles(engines: tuple[Engine, ...], obj: Object, handle_id: int) -> bool:
    """Whether a handle other than this one, of any status (an UNLINKED handle can come back), in
    this or another stack, names the object."""
    for engine in engines:
        with engine.connect() as conn:
            found = conn.execute(
                select(files.c.id).where(tuple_(files.c.bucket_name, files.c.key) == obj, files.c.id != handle_id)
            ).first()
        if found is not None:
            return True
    return False


@dataclass(frozen=True)
class _Source:
    """A readable archive holding the handle's bytes: its facts, and its version in a versioned bucket."""

    facts: ObjectFacts
    version_id: str | None


def _readable_source(s3: S3Client, handle: Handle, record: ArchiveRecord, ctx: MoveContext) -> _Source:
    """The archive, once it is readable and holds the handle's bytes."""
    if record.key != handle.key:
        raise Refused(f"the handle now names key {handle.key}, the archive is of key {record.key}")
    if record.bucket not in ctx.managed_buckets:
        raise Refused(f"the archive's bucket {record.bucket} is not repository-managed storage")
    found, version_id = find_archive(s3, record)
    status = restore_status(found, ctx.clock())
    if found is None:
        raise Refused(f"the archive {record.where} is gone (expired or deleted)")
    if not status.readable:
        raise Refused(f"the archive {record.where} is not readable yet (restore {status.state})")
    # Restored, it reads like a STANDARD object: the checks of a move's source apply to it as to one.
    facts = replace(facts_of_head(found), storage_class="STANDARD")
    problem = source_problem(handle, facts)
    if problem is not None:
        raise Refused(f"the archive does not hold the handle's bytes: {problem}")
    return _Source(facts, version_id)


@dataclass(frozen=True)
class _AtTarget:
    # The object at the target key already is the handle's live bytes: used as it is.
    reuse: bool
    # REUSE: its ETag. Otherwise the ETag of the object the copy replaces (None: the key is free).
    etag: str | None


def _at_target(ctx: MoveContext, handle: Handle, record: ArchiveRecord, source: ObjectFacts) -> _AtTarget:
    """What the target key holds and what may be done with it; Refused when nothing may."""
    key = handle.key or ""
    obj = (ctx.target.bucket, key)
    if _other_handles((ctx.repository, *ctx.other_repositories), obj, handle.id):
        raise Refused(f"another file handle names s3://{obj[0]}/{key}; it is not written over")
    found = head_facts(ctx.s3, *obj)
    if found is None:
        return _AtTarget(False, None)
    if obj == (record.bucket, record.key) and not record.by_version:
        # The archive copy itself, restored: copied onto itself as a live object.
        return _AtTarget(False, found.etag)
    same = holds_these_bytes(handle, source, found, ())
    if same and not found.archived and not carries_archive_tag(ctx.s3, *obj):
        return _AtTarget(True, found.etag)
    raise Refused(
        f"s3://{obj[0]}/{key} holds another object ({found.size} bytes, {found.storage_class}); not overwritten"
    )


def _contexts(settings: Settings, repository: Engine, s3: S3Client, handle: Handle) -> list[MoveContext]:
    with repository.connect() as conn:
        projects = sorted(live_references(conn, [handle.id])[handle.id])
    if not projects:
        raise Refused("no project's file names the handle, so no placement says where it belongs")
    placement = load_placement(repository)
    if placement.belongs_in(projects) is None:
        raise Refused("its projects want it in different buckets (a conflict); it stays where it is")
    run_id = f"reinstate-{uuid.uuid4().hex[:12]}"
    return [move_context(settings, repository, s3, project_id, run_id) for project_id in projects]


def _current(repository: Engine, s3: S3Client, handle_id: int) -> Handle | Reinstated:
    """The handle as it is now, or the report that it needs nothing; Refused when it must not move."""
    with repository.connect() as conn:
        found = read_handles(conn, [handle_id])
    if not found:
        raise Refused(f"file handle {handle_id} no longer exists")
    handle = found[0]
    if handle.status != FileStatus.AVAILABLE.value:
        raise Refused(f"the handle's status is {handle.status}")
    if live_copy_ok(s3, handle):
        return Reinstated(handle_id, False, f"already live and verified at s3://{handle.bucket}/{handle.key}")
    return handle


def reinstate(settings: Settings, repository: Engine, s3: S3Client, handle_id: int) -> Reinstated:
    """Reinstate the newest readable archive of the handle; Refused (with why) when it must not."""
    with repository.connect() as conn:
        records = archive_records(conn, handle_id)
    if not records:
        raise Refused("the move ledger records no archived object of it")
    first = _current(repository, s3, handle_id)
    if isinstance(first, Reinstated):
        return first
    contexts = _contexts(settings, repository, s3, first)
    ctx = contexts[0]
    taken: list[MoveContext] = []
    try:
        for each in contexts:
            try:
                lease.acquire(
                    repository, each.project_id, each.run_id, each.target.bucket, each.clock(), each.lease_seconds
                )
            except lease.LeaseHeld as busy:
                raise Refused(f"{busy.reason}; reinstate it once that run is over") from None
            taken.append(each)
        # Read again under the lease: a run that held it may have moved the handle meanwhile.
        handle = _current(repository, s3, handle_id)
        if isinstance(handle, Reinstated):
            return handle
        if not ctx.placement.is_managed(handle.metadata_type, handle.bucket):
            raise Refused("the handle is not in repository-managed storage")
        return _reinstate(contexts, handle, records)
    except lease.LeaseLost as stop:
        raise Refused(stop.reason) from None
    finally:
        claims.release_run(repository, ctx.run_id)
        for each in taken:
            lease.release(repository, each.project_id, each.run_id)


def _reinstate(contexts: list[MoveContext], handle: Handle, records: list[ArchiveRecord]) -> Reinstated:
    ctx = contexts[0]
    reasons: list[str] = []
    for record in records:
        try:
            source = _readable_source(ctx.s3, handle, record, ctx)
        except Refused as why:
            reasons.append(str(why))
            continue
        return _copy_and_repoint(contexts, handle, record, source)
    raise Refused("; ".join(reasons))


def _copy_and_repoint(
    contexts: list[MoveContext], handle: Handle, record: ArchiveRecord, source: _Source
) -> Reinstated:
    ctx = contexts[0]
    key = handle.key or ""
    where = f"s3://{ctx.target.bucket}/{key}"
    # The archive is the source of this "move": the ledger and copy_object see it as the handle's object.
    from_archive = replace(handle, bucket=record.bucket, key=record.key)
    fences = [WriteFence(each) for each in contexts]

    def before_write() -> None:
        for each in fences:
            each.before_write()

    with ctx.repository.begin() as conn:
        for each in contexts:
            fence(conn, each)
        stale = ledger.unfinished_attempts(conn, [handle.id], lease.live_runs(conn, ctx.clock()))
        ledger.supersede(conn, stale)
        ledger_id = ledger.start(conn, ctx.run_id, ctx.project_id, [from_archive], ctx.target)[handle.id]
    obj = (ctx.target.bucket, key)
    refused = claims.claim(
        ctx.repository, ctx.run_id, [claims.ClaimRequest(*obj, record.bucket)], ctx.clock(), ctx.lease_seconds
    )
    try:
        if refused[obj] is not None:
            raise Refused(f"{where} is claimed: {refused[obj]}")
        at_target = _at_target(ctx, handle, record, source.facts)
        etag = at_target.etag
        if not at_target.reuse:
            with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
                etag = copy_object(
                    ctx.s3,
                    from_archive,
                    source.facts,
                    ctx.target.bucket,
                    ctx.copy,
                    at_target.etag,
                    pool,
                    before_write,
                    source.version_id,
                ).etag
    except (Refused, lease.LeaseLost) as why:
        _close(ctx, ledger_id, MoveState.SKIPPED, str(why))
        raise Refused(str(why)) from None
    except S3Errors as error:
        made = error.made_etag if isinstance(error, VerificationFailed) else None
        _close(ctx, ledger_id, MoveState.FAILED, f"copy failed: {error}", made)
        raise Refused(f"the copy to {where} failed: {error}") from None
    with ctx.repository.begin() as conn:
        ledger.record(conn, MoveState.COPIED, {ledger_id: {"target_object_etag": etag}})
    move = Repoint(handle.id, handle.etag, new_etag())
    try:
        with ctx.repository.begin() as conn:
            for each in contexts:
                fence(conn, each)
            if not claims.held(conn, ctx.run_id, {obj}):
                raise lease.LeaseLost(f"the claim on {where} was lost")
            done = repoint(conn, [move], ctx.target)
            if done:
                # DONE, not REPOINTED: the source is the archive, which is kept, never archived again.
                extra = {"etag_after": move.etag_after, "repointed_on": ctx.clock()}
                ledger.record(conn, MoveState.DONE, {ledger_id: extra})
    except lease.LeaseLost as stop:
        _close(ctx, ledger_id, MoveState.SKIPPED, stop.reason)
        raise Refused(stop.reason) from None
    if not done:
        # The copy stays, recorded as costalloc's own (its ETag above): a later run may replace it.
        _close(ctx, ledger_id, MoveState.SKIPPED, "the handle changed during the reinstate; not repointed")
        raise Refused("the handle changed during the reinstate; it was not repointed")
    return Reinstated(handle.id, True, f"reinstated from {record.where} to {where}")


def _close(ctx: MoveContext, ledger_id: int, state: MoveState, why: str, made: str | None = None) -> None:
    extra: dict[str, object] = {"error": why}
    if made is not None:
        extra["target_object_etag"] = made
    with ctx.repository.begin() as conn:
        ledger.record(conn, state, {ledger_id: extra})
