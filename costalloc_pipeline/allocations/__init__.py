"""Cost allocations and their store.

The cost allocation service: what the REST API and the CLI do, and what the pipeline asks of it.

Every change to a project's association is also appended to `cost_allocation_change`, and the
association row remembers that change's id (`change_number`): the sensor follows the log by id,
and every write here is conditional on the change number it read, so concurrent callers never
overwrite each other (the loser re-reads and tries again).

model.py (the cost allocation and its JSON forms), paging.py (page tokens and limits), planning.py
(pure decisions on an association), store.py (the database reads and the conditional writes) and
operations.py (the operations the API, the CLI and the pipeline call).
"""

from costalloc_pipeline.allocations.model import (
    AssignResult,
    Association,
    CostAllocation,
    Page,
    UploadDestination,
)
from costalloc_pipeline.allocations.operations import (
    MAX_ATTEMPTS,
    assign,
    association_for_project,
    finish_removal,
    get_for_project,
    list_cost_allocations,
    unassign,
    upload_destination,
)
from costalloc_pipeline.allocations.paging import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    PAGE_TOKEN_PATTERN,
    decode_page_token,
    encode_page_token,
    page_limit,
)
from costalloc_pipeline.allocations.planning import (
    AssociationChange,
    plan_assign,
    plan_finish_removal,
    plan_unassign,
)
from costalloc_pipeline.allocations.store import Bind

__all__ = [
    "DEFAULT_PAGE_LIMIT",
    "MAX_ATTEMPTS",
    "MAX_PAGE_LIMIT",
    "PAGE_TOKEN_PATTERN",
    "AssignResult",
    "Association",
    "AssociationChange",
    "Bind",
    "CostAllocation",
    "Page",
    "UploadDestination",
    "assign",
    "association_for_project",
    "decode_page_token",
    "encode_page_token",
    "finish_removal",
    "get_for_project",
    "list_cost_allocations",
    "page_limit",
    "plan_assign",
    "plan_finish_removal",
    "plan_unassign",
    "unassign",
    "upload_destination",
]
