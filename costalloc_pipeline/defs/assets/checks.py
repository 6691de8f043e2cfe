"""Progress toward zero misplaced bytes, per project, against the live repository database.

In a run of one project's partition the check looks at that project; run alone, at every
associated project. It only reads: the relocation run ends an unassignment (removal.py).
"""

import dagster as dg

from costalloc_pipeline.defs.assets.files_out_of_place import files_out_of_place
from costalloc_pipeline.defs.assets.relocation import relocation
from costalloc_pipeline.defs.partitions import project_id_of
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.placement.progress import Progress

PARTITION_TAG = "dagster/partition"


def _projects_to_check(context: dg.AssetCheckExecutionContext, repository: RepositoryDatabase) -> list[int]:
    partition = context.run.tags.get(PARTITION_TAG)
    return [project_id_of(partition)] if partition is not None else repository.associated_projects()


def _metadata(progress: list[Progress]) -> dict[str, dg.MetadataValue]:
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
def no_misplaced_files(context: dg.AssetCheckExecutionContext, repository: RepositoryDatabase) -> dg.AssetCheckResult:
    progress = repository.progress(_projects_to_check(context, repository))
    misplaced = sum(p.misplaced_files for p in progress)
    failed = sum(p.failed_files for p in progress)
    return dg.AssetCheckResult(
        passed=misplaced == 0,
        # WARN while files are on their way; ERROR when some could not be moved and need a person.
        severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
        metadata=_metadata(progress),
        description=f"{misplaced} misplaced files ({failed} failed) in {len(progress)} projects",
    )


defs = dg.Definitions(asset_checks=[no_misplaced_files])
