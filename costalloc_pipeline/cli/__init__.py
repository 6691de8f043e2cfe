"""The `costalloc` command. Each submodule registers its own subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from costalloc_pipeline.cli import admin, allocations, archives, billing, headroom, plan, resume, seed, serve, verify
from costalloc_pipeline.errors import CostAllocError, one_line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="costalloc",
        description=(
            "Cost allocation buckets for a Synapse-like repository. Configuration: COSTALLOC_* variables (see README)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (admin, serve, allocations, seed, verify, resume, plan, archives, billing, headroom):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Settings are read inside the handler (Settings.from_env / runtime.resolve_settings), so a
        # ConfigError in a COSTALLOC_* variable lands here too, before anything is created.
        return args.handler(args) or 0
    except CostAllocError as error:
        # A caller's mistake: one line and a non-zero status, never a traceback.
        print(one_line(error), file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader stopped reading (`costalloc locate ... | head`): not an error to report. Python
        # would complain once more while flushing stdout at exit, so stdout goes nowhere from here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
