"""The dry run of an assignment: what `assign` (or `unassign`) followed by the relocation runs
would move, send to S3, cost and take, computed with the placement rule and the mover's own
bundle planning against a placement built in memory. Nothing is written.

The handles are read from the live repository, not the replica: a relocation run refreshes the
replica before it plans, so it sees what the repository holds now, while the replica may lag by a
whole run (right after a run it still shows the files where they were). Refreshing the replica
here would be a write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from costalloc_pipeline.billing.prices import load_price_table
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.dry_run.costs import Archive, Costs, costs_of
from costalloc_pipeline.dry_run.inputs import (
    PlanTarget,
    kept_live,
    live_out_of_place,
    placement_with,
    resolve_target,
    source_facts,
)
from costalloc_pipeline.dry_run.shares import Conflict, Share, conflict_totals, conflicts_of, shares_by
from costalloc_pipeline.dry_run.timing import BundleWork, TimeModel, total_seconds
from costalloc_pipeline.dry_run.traffic import CopySizes, Move, Requests, bundle_requests, longest_transfer
from costalloc_pipeline.mover.archive_method import ArchiveMethod, bucket_method
from costalloc_pipeline.mover.copy_plan import source_problem
from costalloc_pipeline.mover.handles import Handle, row_problem
from costalloc_pipeline.mover.plan import Bundle, Candidate, plan_bundles
from costalloc_pipeline.mover.run import BundleBounds
from costalloc_pipeline.placement.rule import load_placement

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ASSUMED_STORAGE_CLASS = "STANDARD"


@dataclass(frozen=True)
class Bundles:
    # Bundles of each run: a run takes at most max_bundles; the rest waits for the next run.
    per_run: list[int]
    largest_files: int
    largest_bytes: int

    @property
    def total(self) -> int:
        return sum(self.per_run)


@dataclass(frozen=True)
class DryRun:
    project_id: int
    target: PlanTarget
    # True: storage classes and sources as ListObjectsV2 lists them; False: assumed STANDARD.
    looked_at_s3: bool
    moves: list[Move]
    by_source_bucket: list[Share]
    by_storage_class: list[Share]
    # Reasons the mover would skip or fail misplaced handles, with their counts.
    skipped: dict[str, int]
    failed: dict[str, int]
    conflicts: list[Conflict]
    # Distinct conflicting handles and their bytes.
    conflict_totals: tuple[int, int]
    bundles: Bundles
    requests: Requests
    costs: Costs
    time: TimeModel
    seconds: float
    settings: Settings


def _moves(
    settings: Settings,
    handles: Sequence[Handle],
    s3: S3Client | None,
    failed: Counter[str],
    kept: set[tuple[str, str]],
) -> list[Move]:
    facts = source_facts(s3, {(h.bucket or "", h.key or "") for h in handles}) if s3 is not None else {}
    methods = {
        bucket: bucket_method(s3, bucket, settings.archive_mode, settings.archive_retention_days).value
        for bucket in {h.bucket or "" for h in handles}
        if s3 is not None
    }
    moves: list[Move] = []
    for handle in handles:
        source = facts.get((handle.bucket or "", handle.key or "")) if s3 is not None else None
        problem = source_problem(handle, source) if s3 is not None else None
        if problem is not None:
            failed[problem] += 1
            continue
        bucket, key = handle.bucket or "", handle.key or ""
        moves.append(
            Move(
                file_handle_id=handle.id,
                bucket=bucket,
                key=key,
                size=handle.size or 0,
                storage_class=source.storage_class if source is not None else ASSUMED_STORAGE_CLASS,
                # Unlisted, a source is taken for a single-part object, whose ETag is its MD5.
                md5_known=bool(handle.md5) or source is None or source.md5 is not None,
                archived=(bucket, key) not in kept,
                archive_method=methods.get(bucket, ArchiveMethod.COPY.value),
            )
        )
    return moves


def _runs(candidates: list[Candidate], bounds: BundleBounds) -> list[list[Bundle]]:
    """The mover's bundles of each run, until nothing is deferred."""
    runs: list[list[Bundle]] = []
    while candidates:
        plan = plan_bundles(candidates, bounds.max_files, bounds.max_bytes, bounds.max_bundles)
        runs.append(plan.bundles)
        planned = {handle_id for bundle in plan.bundles for handle_id in bundle.handle_ids}
        candidates = [c for c in candidates if c.file_handle_id not in planned]
    return runs


def plan_assignment(
    settings: Settings,
    s3: S3Client | None,
    project_id: int,
    name: str | None,
    latency_seconds: float,
    bytes_per_second: float,
    bundle_concurrency: int,
) -> DryRun:
    """What assigning the project to `name` (None: unassigning it) would do. `s3`: None to assume
    every source is a STANDARD object as recorded instead of listing the source buckets."""
    repository = engine_for(settings.repository_url)
    with repository.connect() as conn:
        placement = load_placement(conn)
        target = resolve_target(conn, settings.stack, placement.default_bucket, project_id, name)
        hypothetical = placement_with(placement, project_id, target.bucket)
        out_of_place = live_out_of_place(conn, project_id, hypothetical)
        failed: Counter[str] = Counter()
        movable: list[Handle] = []
        for handle in out_of_place.to_move:
            problem = row_problem(handle)
            if problem is None:
                movable.append(handle)
            else:
                failed[problem] += 1
        sources: dict[tuple[str, str], set[int]] = {}
        for handle in movable:
            sources.setdefault((handle.bucket or "", handle.key or ""), set()).add(handle.id)
        kept = kept_live(conn, sources)
    moves = _moves(settings, movable, s3, failed, kept)

    bounds = BundleBounds(settings.bundle_max_files, settings.bundle_max_bytes, settings.max_bundles)
    by_id = {move.file_handle_id: move for move in moves}
    # The run hands the mover every misplaced handle, those it will fail included (as files_out_of_place).
    candidates = [Candidate(h.id, h.bucket or "", h.key, h.size or 0) for h in out_of_place.to_move]
    runs = _runs(candidates, bounds)
    sizes = CopySizes(settings.multipart_threshold, settings.multipart_part_size)
    work: list[BundleWork] = []
    bundles = [bundle for run in runs for bundle in run]
    for bundle in bundles:
        bundle_moves = [by_id[i] for i in bundle.handle_ids if i in by_id]
        traffic = bundle_requests(bundle_moves, sizes, settings.archive_mode != "copy")
        work.append(BundleWork(traffic, longest_transfer(bundle_moves, sizes)))
    requests = sum((w.requests for w in work), Requests())
    model = TimeModel(latency_seconds, bytes_per_second, settings.copy_concurrency, bundle_concurrency)
    archive = Archive(settings.archive_storage_class, settings.archive_retention_days, settings.archive_grace_seconds)
    return DryRun(
        project_id=project_id,
        target=target,
        looked_at_s3=s3 is not None,
        moves=moves,
        by_source_bucket=shares_by(moves, lambda move: move.bucket),
        by_storage_class=shares_by(moves, lambda move: move.storage_class),
        skipped=out_of_place.skipped,
        failed=dict(sorted(failed.items())),
        conflicts=conflicts_of(out_of_place.conflicts, placement),
        conflict_totals=conflict_totals(out_of_place.conflicts),
        bundles=Bundles(
            per_run=[len(run) for run in runs],
            largest_files=max((bundle.files for bundle in bundles), default=0),
            largest_bytes=max((bundle.bytes for bundle in bundles), default=0),
        ),
        requests=requests,
        costs=costs_of(moves, requests, target.bucket, archive, load_price_table(settings.price_table)),
        time=model,
        seconds=total_seconds(work, model),
        settings=settings,
    )
