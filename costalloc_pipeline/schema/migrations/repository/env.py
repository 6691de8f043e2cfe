from alembic import context

from costalloc_pipeline.schema.migrate import run_env
from costalloc_pipeline.schema.repository import metadata

run_env(context, metadata)
