"""Progress toward zero misplaced bytes, per project, against the live repository database.

In a run of one project's partition the check looks at that project; run alone, at every
associated project. A REMOVING project whose files are all back in the default bucket is then
removed from its cost allocation.
"""

import dagster as dg
from sqlalchemy import select

from costalloc_pipeline import service
from costalloc_pipeline.assets.files_out_of_place import files_out_of_place
from costalloc_pipeline.assets.relocation import relocation
from costalloc_pipeline.placement import load_placement
from costalloc_pipeline.progress import Progress, project_progress
from costalloc_pipeline.resources.databases import Database
from costalloc_pipeline.schema.repository import (
    AssociationState,
    cost_allocation_project,
)

PARTITION_TAG = "dagster/partition"


def _projects_to_check(context: dg.AssetCheckExecutionContext, repository: Database) -> list[int]:
    partition = context.run.tags.get(PARTITION_TAG)
    if partition is not None:
        return [int(partition)]
    with repository.engine.connect() as conn:
        return list(conn.execute(select(cost_allocation_project.c.project_id).order_by("project_id")).scalars())


def _metadata(progress: list[Progress], removed: list[int]) -> dict[str, dg.MetadataValue]:
    misplaced_files = sum(p.misplaced_files for p in progress)
    misplaced_bytes = sum(p.misplaced_bytes for p in progress)
    placed_bytes = sum(p.placed_bytes for p in progress)
    total = placed_bytes + misplaced_bytes
    rows = "\n".join(
        f"| {p.project_id} | {p.target_bucket} | {p.misplaced_files} | {p.misplaced_bytes} | {p.conflict_files} "
        f"| {p.moved_bytes} | {p.percent_done} |"
        for p in progress
    )
    return {
        "projects": dg.MetadataValue.int(len(progress)),
        "misplaced_files": dg.MetadataValue.int(misplaced_files),
        "misplaced_bytes": dg.MetadataValue.int(misplaced_bytes),
        "moved_bytes": dg.MetadataValue.int(sum(p.moved_bytes for p in progress)),
        "conflict_files": dg.MetadataValue.int(sum(p.conflict_files for p in progress)),
        "failed_files": dg.MetadataValue.int(sum(p.failed_files for p in progress)),
        "percent_done": dg.MetadataValue.float(100.0 if total == 0 else round(100.0 * placed_bytes / total, 2)),
        "removed_associations": dg.MetadataValue.text(", ".join(map(str, removed)) or "none"),
        "by_project": dg.MetadataValue.md(
            "| project | target bucket | misplaced files | misplaced bytes | conflicts | moved bytes | % done |\n"
            "|---|---|---|---|---|---|---|\n" + rows
        ),
    }


@dg.asset_check(
    asset=files_out_of_place,
    additional_deps=[relocation],
    description="Passes when no file of the project is left outside its target bucket; warns while files move.",
)
def no_misplaced_files(context: dg.AssetCheckExecutionContext, repository: Database) -> dg.AssetCheckResult:
    project_ids = _projects_to_check(context, repository)
    with repository.engine.connect() as conn:
        placement = load_placement(conn)
        progress = [project_progress(conn, project_id, placement) for project_id in project_ids]
    removed = []
    for item in progress:
        association = service.association_for_project(repository.engine, item.project_id)
        if (
            item.misplaced_files == 0
            and association is not None
            and association.state == AssociationState.REMOVING
            and service.finish_removal(repository.engine, item.project_id)
        ):
            removed.append(item.project_id)
    misplaced = sum(p.misplaced_files for p in progress)
    failed = sum(p.failed_files for p in progress)
    return dg.AssetCheckResult(
        passed=misplaced == 0,
        # WARN while files are on their way; ERROR when some could not be moved and need a person.
        severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
        metadata=_metadata(progress, removed),
        description=f"{misplaced} misplaced files ({failed} failed) in {len(progress)} projects",
    )
