"""Errors a caller can fix. The API answers them as {"reason": ...}; the CLI prints one line."""

from __future__ import annotations


class CostAllocError(Exception):
    status: int = 400

    @property
    def reason(self) -> str:
        return str(self)


class BadRequest(CostAllocError):
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
