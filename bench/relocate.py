"""costalloc's lane of the race: the project's relocation as the pipeline's ops do it, minus Dagster.

find the misplaced handles (the files_out_of_place asset's computation), then the run: take the
project's lease, plan bundles, move each bundle in turn (copy, verify, repoint, archive and ledger)
with the settings' concurrency and an S3 client pooled like the pipeline's RepositoryS3 resource.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass

from bench.counting import RequestCounter
from bench.dataset import MoveStage
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.mover.context import move_context
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.plan import candidates_of, plan_bundles
from costalloc_pipeline.mover.run import BundleBounds
from costalloc_pipeline.mover.run import relocate as relocate_project
from costalloc_pipeline.placement.misplaced import find_out_of_place
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.s3 import make_s3_client


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


def relocate(stage: MoveStage) -> RelocationRun:
    settings = stage.settings
    repository = engine_for(settings.repository_url)
    replica = engine_for(settings.replica_url)
    # RepositoryS3 pools twice the copy concurrency: a bundle's copies plus a multipart's parts.
    s3 = make_s3_client(settings.s3_endpoint_url, settings.s3_region, 2 * settings.copy_concurrency)
    counter = RequestCounter().attach(s3)

    started = time.perf_counter()
    to_move = find_out_of_place(replica, stage.project_id, load_placement(repository)).to_move
    context = move_context(settings, repository, s3, stage.project_id, f"bench-{uuid.uuid4()}")
    bounds = BundleBounds(settings.bundle_max_files, settings.bundle_max_bytes, settings.max_bundles)
    total = relocate_project(context, candidates_of(to_move), bounds)
    seconds = time.perf_counter() - started

    if total.moved_files != stage.files or total.archived_objects != stage.files:
        raise IncompleteMove(
            f"costalloc moved {total.moved_files} and archived {total.archived_objects} of {stage.files} files; "
            f"failed: {list(total.failed.values())[:3]}, skipped: {dict(total.skipped)}"
        )
    bundles = len(plan_bundles(candidates_of(to_move), bounds.max_files, bounds.max_bytes, bounds.max_bundles).bundles)
    return RelocationRun(seconds, bundles, total, Counter(counter.calls), counter.http_requests)
