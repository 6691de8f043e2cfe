"""A synthetic Synapse-like repository for demos, tests and benchmarks.

Two halves. Planning is pure: `RepositoryPlan` lazily yields every row and object of the
repository from a `SeedSpec`, a random seed and the first free ids, so it is deterministic and
never holds the whole repository in memory. Writing is I/O: `seed_repository` bootstraps the
stack, makes sure the buckets exist, streams the rows into the repository database in bulk and
uploads the objects concurrently, all in one transaction that commits only after every upload
finished (so no committed AVAILABLE handle ever points at a missing object, I1).

Special cases the pipeline must handle, per project (see `special_slots`):
- a handle referenced by versions of two entities of the same project (shared within);
- a handle of the previous project referenced by an entity of this one (shared across);
- two distinct handles with the same bucket and key, same bytes and MD5 (same-key pairs; every
  odd pair reaches into the previous project, so archiving must look beyond one project);
- previews (handles with is_preview, referenced by `files.preview_id` of their main handle);
- external handles: URLs (EXTERNAL, no bucket) and S3 objects in an external bucket whose
  storage location is not repository-managed.
"""

from costalloc_pipeline.seed.model import PlannedItem, PlannedObject, PlannedRow, PlanTally, PlanTargets
from costalloc_pipeline.seed.objects import ObjectUploader, ensure_bucket
from costalloc_pipeline.seed.plan import FILE_KINDS, PREVIEW_CONTENT_TYPE, PREVIEW_NAME, RepositoryPlan
from costalloc_pipeline.seed.report import SeedReport
from costalloc_pipeline.seed.rows import EXTERNAL_URL_ENDPOINT, SYNTHETIC_USERS, EvenShare, uuid4_text
from costalloc_pipeline.seed.run import external_bucket_name, seed_repository
from costalloc_pipeline.seed.spec import SeedSpec, Slot, special_slots
from costalloc_pipeline.seed.writer import BATCH_ROWS, BulkRowWriter

__all__ = [
    "BATCH_ROWS",
    "EXTERNAL_URL_ENDPOINT",
    "FILE_KINDS",
    "PREVIEW_CONTENT_TYPE",
    "PREVIEW_NAME",
    "SYNTHETIC_USERS",
    "BulkRowWriter",
    "EvenShare",
    "ObjectUploader",
    "PlanTally",
    "PlanTargets",
    "PlannedItem",
    "PlannedObject",
    "PlannedRow",
    "RepositoryPlan",
    "SeedReport",
    "SeedSpec",
    "Slot",
    "ensure_bucket",
    "external_bucket_name",
    "seed_repository",
    "special_slots",
    "uuid4_text",
]
