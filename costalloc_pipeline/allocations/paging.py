"""Pages of cost allocations: the page size bounds and the opaque page token."""

from __future__ import annotations

import base64
import re

from costalloc_pipeline.errors import BadRequest

DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 100
# A page token is opaque to clients: the id of the last cost allocation of the page before, as 8
# bytes in URL-safe base64 (11 characters). Every token the pattern admits is a valid place to
# start: its first character keeps the top bit 0, so the id stays in BIGINT's range.
PAGE_TOKEN_PATTERN = "^[A-Za-f][A-Za-z0-9_-]{10}$"
_PAGE_TOKEN = re.compile(PAGE_TOKEN_PATTERN)


def encode_page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(last_id.to_bytes(8, "big")).decode("ascii").rstrip("=")


def decode_page_token(token: str) -> int:
    if _PAGE_TOKEN.fullmatch(token) is None:
        raise BadRequest("invalid nextPageToken: pass back the one the previous page returned")
    return int.from_bytes(base64.urlsafe_b64decode(token + "="), "big")


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_LIMIT
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_LIMIT}, got {limit}")
    return limit
