"""Pure rules for what callers type: cost allocation names, entity ids, and the bucket names derived from them."""

from __future__ import annotations

import hashlib
import ipaddress
import re

from costalloc_pipeline.errors import BadRequest

MAX_NAME_LENGTH = 64  # cost_allocation.name is VARCHAR(64)
MAX_BUCKET_LENGTH = 63
ENTITY_PREFIX = "syn"
# Synapse ids are BIGINT; 18 digits (far beyond any real id) keep every id the pattern admits in range.
MAX_ENTITY_DIGITS = 18
MAX_ENTITY_ID = 10**MAX_ENTITY_DIGITS - 1

# The rules below are written once, as patterns: the service validates with them and the OpenAPI
# document publishes them (api_schema.py), so what a generated client may send is what is accepted.
# Surrounding blanks are trimmed; only ASCII ones, so that the pattern says exactly what is trimmed.
_BLANKS = " \t\r\n"
_BLANKS_CLASS = r" \t\r\n"
_NAME_CHARACTERS = "A-Za-z0-9._-"
NAME_PATTERN = f"^[{_BLANKS_CLASS}]*[{_NAME_CHARACTERS}]{{1,{MAX_NAME_LENGTH}}}[{_BLANKS_CLASS}]*$"
# `syn123` or `123`, any case of the prefix, no zero id.
ENTITY_ID_PATTERN = f"^(?:[sS][yY][nN])?0*[1-9][0-9]{{0,{MAX_ENTITY_DIGITS - 1}}}$"

_NAME = re.compile(f"[{_NAME_CHARACTERS}]+")
_ENTITY_ID = re.compile(ENTITY_ID_PATTERN)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_BUCKET_CHARS = re.compile(r"[^a-z0-9]+")
# 12 hex digits = 48 bits: a clash between two of a stack's names is beyond any realistic count, and
# the unique bucket column would still refuse it rather than let two allocations share a bucket.
_HASH_LENGTH = 12
_STACK_PART_MAX = 20
_INFIX = "ca"


def normalise_name(raw: object) -> str:
    """The stored form of a cost allocation name: trimmed, lower-cased, validated (NAME_PATTERN,
    with a reason for each way to miss it)."""
    if not isinstance(raw, str):
        raise BadRequest("name must be a string")
    trimmed = raw.strip(_BLANKS)
    if not trimmed:
        raise BadRequest("name must not be empty")
    if len(trimmed) > MAX_NAME_LENGTH:
        raise BadRequest(f"name must be at most {MAX_NAME_LENGTH} characters, got {len(trimmed)}")
    if not _NAME.fullmatch(trimmed):
        raise BadRequest(f"name {trimmed!r} may contain only letters A-Z and a-z, digits 0-9, '-', '.' and '_'")
    return trimmed.lower()


def parse_entity_id(raw: str) -> int:
    """`syn123` or `123` -> 123 (ENTITY_ID_PATTERN); anything else is a 400."""
    if _ENTITY_ID.fullmatch(raw) is None:
        raise BadRequest(f"entity id {raw!r} is not of the form syn123 or 123 (1 to {MAX_ENTITY_ID})")
    return int(raw[len(ENTITY_PREFIX) :] if raw[:1] in "sS" else raw)


def format_entity_id(entity_id: int) -> str:
    return f"{ENTITY_PREFIX}{entity_id}"


def _bucket_part(text: str) -> str:
    # '.' and '_' both become '-': dots in bucket names break virtual-host TLS, '_' is not allowed.
    return _NOT_BUCKET_CHARS.sub("-", text.lower()).strip("-")


def is_valid_bucket_name(bucket: str) -> bool:
    """S3's general purpose bucket naming rules."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or ".-" in bucket or "-." in bucket:
        return False
    try:
        ipaddress.IPv4Address(bucket)
        return False
    except ValueError:
        pass
    reserved_prefixes = ("xn--", "sthree-", "amzn-s3-demo-")
    reserved_suffixes = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
    return not bucket.startswith(reserved_prefixes) and not bucket.endswith(reserved_suffixes)


def bucket_name_for(stack: str, name: str) -> str:
    """`<stack>-ca-<readable name>-<hash of the exact name>`, a valid S3 bucket name.

    The readable part may be shared by distinct names (`a_b`, `a-b`, `a.b`); the hash of the exact
    normalised name keeps their buckets apart, and is stable across releases and hosts.
    """
    stack_part = _bucket_part(stack)[:_STACK_PART_MAX].strip("-")
    if not stack_part:
        raise ValueError(f"stack {stack!r} has no letter or digit to prefix bucket names with")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    room = MAX_BUCKET_LENGTH - len(stack_part) - len(_INFIX) - len(digest) - 3
    readable = _bucket_part(name)[:room].strip("-")
    parts = [stack_part, _INFIX, readable, digest] if readable else [stack_part, _INFIX, digest]
    bucket = "-".join(parts)
    if not is_valid_bucket_name(bucket):
        raise ValueError(f"stack {stack!r} yields the invalid bucket name {bucket!r}")
    return bucket


# Cost allocation ids are database keys, bounded like entity ids (inside a signed 64-bit integer).
ALLOCATION_ID_PATTERN = f"^0*[1-9][0-9]{{0,{MAX_ENTITY_DIGITS - 1}}}$"
_ALLOCATION_ID = re.compile(ALLOCATION_ID_PATTERN)


def parse_allocation_id(raw: str) -> int:
    """A cost allocation's id as the API and the CLI take it; anything else is a 400."""
    if _ALLOCATION_ID.fullmatch(raw) is None:
        raise BadRequest(f"cost allocation id {raw!r} is not a number from 1 to {MAX_ENTITY_ID}")
    return int(raw)
