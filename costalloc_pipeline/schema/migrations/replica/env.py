from alembic import context

from costalloc_pipeline.schema.migrate import run_env
from costalloc_pipeline.schema.replica import metadata

run_env(context, metadata)
