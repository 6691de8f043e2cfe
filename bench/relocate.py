"""costalloc's lane of the race: the project's relocation as the pipeline's ops do it, minus Dagster.

find the misplaced handles (the files_out_of_place asset's computation), plan bundles, then
move_bundle for each bundle in turn: copy, verify, repoint, archive and ledger, with the settings'
concurrency and an S3 client pooled like the pipeline's RepositoryS3 resource.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass

from costalloc_pipeline import service
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.misplaced import find_out_of_place, load_placement
from costalloc_pipeline.mover.bundle import BundleResult, MoveContext, move_bundle
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.handles import Target
from costalloc_pipeline.mover.plan import Candidate, plan_bundles
from costalloc_pipeline.s3 import make_s3_client

from bench.counting import RequestCounter, add_latency
from bench.dataset import MoveStage


@dataclass(frozen=True)
class RelocationRun:
    seconds: float
    bundles: int
    result: BundleResult
    calls: Counter[str]
    http_requests: int

    @property
    def files_per_second(self) -> float:
        return self.result.moved_files / self.seconds


class IncompleteMove(RuntimeError):
    """A benchmark lane that did not move everything measured nothing worth reporting."""


def relocate(stage: MoveStage, latency: float = 0.0) -> RelocationRun:
    settings = stage.settings
    repository = engine_for(settings.repository_url)
    replica = engine_for(settings.replica_url)
    # RepositoryS3 pools twice the copy concurrency: a bundle's copies plus a multipart's parts.
    s3 = make_s3_client(settings.s3_endpoint_url, settings.s3_region, 2 * settings.copy_concurrency)
    counter = RequestCounter().attach(s3)
    if latency:
        add_latency(s3, latency)

    started = time.perf_counter()
    placement = load_placement(repository)
    target = service.target_bucket_for_project(repository, stage.project_id)
    to_move = find_out_of_place(replica, stage.project_id, placement).to_move
    candidates = [
        Candidate(int(row.file_handle_id), row.bucket_name, row.key, int(row.content_size or 0))
        for row in to_move.itertuples(index=False)
    ]
    plan = plan_bundles(candidates, settings.bundle_max_files, settings.bundle_max_bytes, settings.max_bundles)
    context = MoveContext(
        repository=repository,
        other_repositories=(),
        s3=s3,
        run_id=f"bench-{uuid.uuid4()}",
        project_id=stage.project_id,
        target=Target(target.bucket, target.storage_location_id),
        managed_buckets=placement.managed_buckets,
        copy=CopyOptions(settings.multipart_threshold, settings.multipart_part_size),
        archive_storage_class=settings.archive_storage_class,
        concurrency=settings.copy_concurrency,
    )
    total = BundleResult()
    for bundle in plan.bundles:
        total = total.merge(move_bundle(context, bundle.handle_ids))
    seconds = time.perf_counter() - started

    if total.moved_files != stage.files or total.archived_objects != stage.files:
        raise IncompleteMove(
            f"costalloc moved {total.moved_files} and archived {total.archived_objects} of {stage.files} files; "
            f"failed: {list(total.failed.values())[:3]}, skipped: {dict(total.skipped)}"
        )
    return RelocationRun(seconds, len(plan.bundles), total, Counter(counter.calls), counter.http_requests)
