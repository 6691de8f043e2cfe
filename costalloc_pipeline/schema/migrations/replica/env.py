from alembic import context

from costalloc_pipeline.schema.replica import metadata
from costalloc_pipeline.schema.migrate import run_env

run_env(context, metadata)
