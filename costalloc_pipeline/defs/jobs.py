"""Jobs: relocate one project (a partition), the storage report and the invariant audit."""

from __future__ import annotations

import dagster as dg

from costalloc_pipeline.defs.assets.files_out_of_place import files_out_of_place
from costalloc_pipeline.defs.assets.invariants import invariants_hold
from costalloc_pipeline.defs.assets.relocation import relocation
from costalloc_pipeline.defs.assets.replication import entity_replication, file_replication
from costalloc_pipeline.defs.assets.storage_report import cost_allocation_storage

# Refresh the replica, find the project's misplaced files, move them, then check the project's
# partition (the check runs with the asset it is attached to).
relocate_project = dg.define_asset_job(
    "relocate_project",
    selection=dg.AssetSelection.assets(entity_replication, file_replication, files_out_of_place, relocation),
    description="Moves one project's files into its cost allocation bucket (or back to the default bucket).",
)

report_storage = dg.define_asset_job(
    "report_storage",
    selection=dg.AssetSelection.assets(cost_allocation_storage),
    description="Files and bytes per cost allocation bucket: what the bill will show.",
)

audit_repository = dg.define_asset_job(
    "audit_repository",
    selection=dg.AssetSelection.checks(invariants_hold),
    description="Audits invariants I1-I5 over the whole repository (what `costalloc verify` reports).",
)


defs = dg.Definitions(jobs=[relocate_project, report_storage, audit_repository])
