from alembic import context

from costalloc_pipeline.schema.repository import metadata
from costalloc_pipeline.schema.migrate import run_env

run_env(context, metadata)
