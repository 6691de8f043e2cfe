"""The costalloc code location: `dagster dev -w workspace.yaml` loads `defs` from here. Importing it
starts nothing: on the embedded default, the data folder's S3 server starts when a run first needs it."""

from costalloc_pipeline.config import Settings
from costalloc_pipeline.defs.location import build_definitions

defs = build_definitions(Settings.from_env())
