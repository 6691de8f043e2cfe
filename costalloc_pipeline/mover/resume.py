"""The resume path: finish moves that a crash left between the repoint and the archive step.

Moves interrupted before the repoint need nothing here: their handles are still misplaced, so the
next run moves them again and reuses a verified copy already in the target bucket (see bundle.py).
"""

from __future__ import annotations

from costalloc_pipeline.mover import ledger
from costalloc_pipeline.mover.bundle import ArchiveItem, BundleResult, MoveContext, archive_sources


def resume_interrupted(ctx: MoveContext, project_id: int | None) -> BundleResult:
    """Archive step for REPOINTED ledger rows (of one project, or all when project_id is None)."""
    with ctx.repository.connect() as conn:
        rows = ledger.repointed_not_archived(conn, project_id)
    result = BundleResult()
    items = [ArchiveItem(row.id, row.source_bucket, row.source_key, row.content_size) for row in rows]
    archive_sources(ctx, items, result)
    return result
