"""Step 2, the decision: what to do for one handle at its target key, purely, from what is really at
the source and at the target (objects.py). The source must be the handle's bytes (its size, and
its MD5 when recorded); the target key must be free, hold exactly those bytes already (reused), or
hold a stale copy that costalloc itself made and nothing references (overwritten). Anything else at
the target is never overwritten, whoever owns it: the file is a target conflict (DESIGN.md
section 4). copier.py carries the decision out."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.objects import ObjectFacts, is_plain_md5


class Action(enum.Enum):
    COPY = "copy"
    REUSE = "reuse"
    # A multipart object of the right size at the target key: only its bytes can tell.
    READ_BACK = "read back"
    FAIL = "fail"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class CopyPlan:
    action: Action
    reason: str = ""
    # COPY over an object that may be replaced (its ETag): the write is conditional on it.
    replaces: str | None = None
    # READ_BACK: what to do when the bytes read are not the handle's.
    otherwise: CopyPlan | None = None
    # REUSE and READ_BACK: the ETag of the object found at the target key.
    found_etag: str | None = None


def expected_md5(handle: Handle, source: ObjectFacts) -> str | None:
    """The MD5 the copy must have: the handle's, else the source's own when it is single-part."""
    return handle.md5.lower() if handle.md5 else source.md5


def source_problem(handle: Handle, source: ObjectFacts | None) -> str | None:
    """Why the object at the source is not the bytes the handle describes (then nothing moves)."""
    if source is None:
        return "the source object is missing"
    if source.archived:
        return f"the source object is in {source.storage_class}, not readable"
    if handle.size is not None and source.size != handle.size:
        return f"the object is {source.size} bytes, the handle records {handle.size}"
    if handle.md5 and not is_plain_md5(handle.md5):
        return f"the handle's MD5 {handle.md5!r} is not an MD5"
    if handle.md5 and source.md5 is not None and source.md5 != handle.md5.lower():
        return f"the object's MD5 {source.md5} differs from the handle's {handle.md5}"
    return None


def holds_these_bytes(handle: Handle, source: ObjectFacts, found: ObjectFacts, verified: Collection[str]) -> bool:
    """Whether an object is provably the handle's bytes (the source being proven so already): same
    size and ETag as the source, or the expected MD5, or a copy the ledger verified for the handle
    as it is now (`verified`: their ETags)."""
    if found.size != source.size:
        return False
    if found.etag == source.etag:
        # Two objects with one ETag hold the same bytes: an MD5, or for multipart objects the MD5 of
        # the same parts' MD5s (costalloc copies and archives with one part size).
        return True
    md5 = expected_md5(handle, source)
    return found.etag == md5 if md5 is not None else found.etag in verified


def plan_copy(
    handle: Handle,
    source: ObjectFacts | None,
    target: ObjectFacts | None,
    verified: Collection[str],
    own_copies: Collection[str],
    target_referenced: bool,
) -> CopyPlan:
    """Pure: what to do for one handle, from what is at the source and at the target key.

    `own_copies`: ETags of copies costalloc made at that key (the ledger); `target_referenced`:
    whether any handle, of any status, of this or another stack names the target object."""
    problem = source_problem(handle, source)
    if problem is not None or source is None:
        return CopyPlan(Action.FAIL, problem or "")
    if target is None:
        return CopyPlan(Action.COPY)
    same_bytes = holds_these_bytes(handle, source, target, verified)
    if same_bytes and not target.archived:
        return CopyPlan(Action.REUSE, found_etag=target.etag)
    if same_bytes:
        # An archive of these very bytes (an earlier move away): a live copy replaces it, nothing is lost.
        return CopyPlan(Action.COPY, replaces=target.etag)
    if target.etag in own_copies and not target_referenced:
        # A copy costalloc made for a move that did not finish (the handle changed meanwhile).
        otherwise = CopyPlan(Action.COPY, replaces=target.etag)
    else:
        otherwise = CopyPlan(
            Action.CONFLICT,
            f"the target key holds other bytes ({target.size} bytes, ETag {target.etag}, {target.storage_class}); "
            "not overwritten",
        )
    if target.md5 is None and not target.archived and target.size == source.size and expected_md5(handle, source):
        # A multipart copy whose ledger row a crash cut short has this shape: read it before judging.
        return CopyPlan(Action.READ_BACK, otherwise=otherwise, found_etag=target.etag)
    return otherwise
