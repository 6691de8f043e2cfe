"""The audit of `costalloc verify` as an asset check over the whole repository.

It runs on its own schedule (the audit job selects the check alone), not with every storage
report: a full audit makes one HEAD per handle. Moves of runs still in progress are work, not
violations, so their half-done ledger rows are left out.
"""

import dagster as dg

from costalloc_pipeline.audit import Violations, audit
from costalloc_pipeline.defs.resources.databases import Database
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings

# What the audit judges: the repository's file handles and the S3 objects they point at. costalloc
# does not materialize them (the repository's writers do), so the asset is external and only its
# check runs, on the audit's schedule, never as a side effect of another asset.
repository_files = dg.AssetSpec(
    "repository_files",
    group_name="reports",
    kinds={"sql", "s3"},
    description="The repository's file handles and their S3 objects, written by the repository; audited here.",
)

MOVING = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def runs_in_progress(instance: dg.DagsterInstance) -> frozenset[str]:
    return frozenset(run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(MOVING))))


def audit_metadata(violations: Violations) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "violations": dg.MetadataValue.int(violations.total),
        "checked_handles": dg.MetadataValue.int(violations.checked_handles),
        "managed_handles": dg.MetadataValue.int(violations.managed_handles),
        "checked_archives": dg.MetadataValue.int(violations.checked_archives),
        "checked_ledger_rows": dg.MetadataValue.int(violations.checked_ledger_rows),
        "sampled": dg.MetadataValue.bool(violations.sampled),
    }
    if violations.counts:
        metadata["by_kind"] = dg.MetadataValue.md(
            "| violation | count | first ids |\n|---|---|---|\n"
            + "\n".join(
                f"| {kind} | {violations.counts[kind]} | {', '.join(map(str, violations.found[kind]))} |"
                for kind in sorted(violations.counts)
            )
        )
    return metadata


@dg.asset_check(
    asset=repository_files.key,
    description=(
        "Audits invariants I1-I5 over every handle in repository-managed storage (or a sample, "
        "COSTALLOC_AUDIT_SAMPLE): objects exist with the handle's size and MD5, nothing referenced is "
        "archived, archives are kept, and no move was left half-done. Fails on any violation."
    ),
)
def invariants_hold(
    context: dg.AssetCheckExecutionContext, settings: CostAllocSettings, repository: Database, s3: RepositoryS3
) -> dg.AssetCheckResult:
    with repository.engine.connect() as conn:
        violations = audit(
            conn,
            s3.get_client(),
            concurrency=settings.copy_concurrency,
            sample=settings.audit_sample or None,
            retention_days=settings.archive_retention_days,
            in_progress_runs=runs_in_progress(context.instance) - {context.run.run_id},
            archive_grace_seconds=settings.archive_grace_seconds,
        )
    summary = ", ".join(f"{kind}: {count}" for kind, count in sorted(violations.counts.items()))
    return dg.AssetCheckResult(
        passed=violations.total == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=audit_metadata(violations),
        description=summary or f"no violations in {violations.checked_handles} handles",
    )


defs = dg.Definitions(assets=[repository_files], asset_checks=[invariants_hold])
