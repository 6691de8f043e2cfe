"""Errors a caller can fix. The API answers them as {"reason": ...}; the CLI prints one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class CostAllocError(Exception):
    status: int = 400

    @property
    def reason(self) -> str:
        return str(self)


class BadRequest(CostAllocError):
    status = 400


class ConfigError(CostAllocError):
    """A COSTALLOC_* setting is out of range or not of its kind; the reason names the variable."""

    status = 400


class Unauthorized(CostAllocError):
    status = 401


class Forbidden(CostAllocError):
    status = 403


class NotFound(CostAllocError):
    status = 404


class Conflict(CostAllocError):
    status = 409


class Unavailable(CostAllocError):
    """A dependency (S3, the account's limits) refused; nothing was written."""

    status = 503


def one_line(error: CostAllocError) -> str:
    """How the command line shows a caller's mistake."""
    return f"costalloc: {error.reason}"


@contextmanager
def exit_2_on_caller_error() -> Iterator[None]:
    """For a script's main (e.g. `python -m costalloc_pipeline.dev`): a caller's mistake is one line and exit 2."""
    try:
        yield
    except CostAllocError as error:
        print(one_line(error), file=sys.stderr)
        raise SystemExit(2) from None
