"""The resume path: archive the old objects of repointed moves once their grace period is over.

Only rows of runs that are over are taken (a live run finishes its own), and each object is checked
again right before its archive (bundle.archive_sources). Moves interrupted before the repoint need
nothing here: their handles are still misplaced, so the next run moves them again and reuses a
verified copy already in the target bucket.
"""

from __future__ import annotations

from costalloc_pipeline.mover import lease, ledger
from costalloc_pipeline.mover.archive import ArchiveItem, archive_sources
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.outcome import BundleResult


def archive_due(ctx: MoveContext, project_id: int | None) -> BundleResult:
    """Archive step for the due REPOINTED ledger rows (of one project, or all when None)."""
    with ctx.repository.begin() as conn:
        rows = ledger.due_archives(conn, project_id, ctx.due_before(), lease.live_runs(conn, ctx.clock()), ctx.run_id)
    result = BundleResult()
    items = [
        ArchiveItem(
            row.id, row.source_bucket, row.source_key, row.content_size, row.source_object_etag, row.source_version_id
        )
        for row in rows
    ]
    archive_sources(ctx, items, result)
    return result
