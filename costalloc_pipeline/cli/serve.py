"""`costalloc serve`: the REST API under uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from costalloc_pipeline.api import create_app
from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.runtime import resolve_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def run_serve(args: argparse.Namespace) -> int:
    settings = resolve_settings()
    require_initialised(settings)
    print(f"costalloc API on http://{args.host}:{args.port} (S3 endpoint {settings.s3_endpoint_url})", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the REST API",
        description=(
            "Serves the cost allocation REST API. Configuration comes from COSTALLOC_* variables; "
            "without COSTALLOC_S3_ENDPOINT_URL the embedded S3 is started. Run `costalloc init` first."
        ),
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default info)",
    )
    serve.set_defaults(handler=run_serve)
