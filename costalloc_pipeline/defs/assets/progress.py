"""A project's progress as Dagster metadata: the same keys on the check's results and on the
relocation's observations between bundles, so the UI plots one line per project toward zero."""

import dagster as dg

from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.placement.progress import Progress


def progress_metadata(progress: Progress) -> dict[str, dg.MetadataValue]:
    return {
        "project": dg.MetadataValue.text(format_entity_id(progress.project_id)),
        "target_bucket": dg.MetadataValue.text(progress.target_bucket),
        "misplaced_files": dg.MetadataValue.int(progress.misplaced_files),
        "misplaced_bytes": dg.MetadataValue.int(progress.misplaced_bytes),
        "placed_files": dg.MetadataValue.int(progress.placed_files),
        "placed_bytes": dg.MetadataValue.int(progress.placed_bytes),
        "moved_bytes": dg.MetadataValue.int(progress.moved_bytes),
        "conflict_files": dg.MetadataValue.int(progress.conflict_files),
        "failed_files": dg.MetadataValue.int(progress.failed_files),
        "percent_done": dg.MetadataValue.float(progress.percent_done),
    }


def describe(progress: Progress) -> str:
    return (
        f"{format_entity_id(progress.project_id)}: {progress.misplaced_files} misplaced files "
        f"({progress.misplaced_bytes} bytes), {progress.failed_files} failed, {progress.percent_done}% done"
    )
