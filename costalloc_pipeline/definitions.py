"""The costalloc code location: `dagster dev -w workspace.yaml` loads `defs` from here."""

from costalloc_pipeline.defs.location import build_definitions
from costalloc_pipeline.runtime import resolve_settings

defs = build_definitions(resolve_settings())
