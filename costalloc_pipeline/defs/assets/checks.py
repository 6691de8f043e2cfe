"""Per project: whether every file is in its target bucket, against the live repository database.

Partitioned like `relocation`, so each project's partition shows its own result and a plot of its
own numbers. It only reads: the relocation run ends an unassignment (removal.py).
"""

import warnings

import dagster as dg

from costalloc_pipeline.defs.assets.progress import describe, progress_metadata
from costalloc_pipeline.defs.assets.relocation import relocation
from costalloc_pipeline.defs.partitions import project_id_of, projects
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase


def no_misplaced_files(context: dg.AssetCheckExecutionContext, repository: RepositoryDatabase) -> dg.AssetCheckResult:
    [progress] = repository.progress([project_id_of(context.partition_key)])
    return dg.AssetCheckResult(
        passed=progress.misplaced_files == 0,
        severity=dg.AssetCheckSeverity.ERROR if progress.failed_files else dg.AssetCheckSeverity.WARN,
        metadata=progress_metadata(progress),
        description=describe(progress),
    )


# Partitioned checks are a preview in Dagster 1.13 and warn at every load of the location. The
# version is pinned (requirements.lock) and the partitioned behaviour tested (tests/defs, tests/ui).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    no_misplaced_files_check = dg.asset_check(
        asset=relocation,
        name="no_misplaced_files",
        partitions_def=projects,
        description=(
            "Passes when no file of the project is left outside its target bucket; warns while files are "
            "left, fails with ERROR when a file could not be moved and needs a person."
        ),
    )(no_misplaced_files)


defs = dg.Definitions(asset_checks=[no_misplaced_files_check])
