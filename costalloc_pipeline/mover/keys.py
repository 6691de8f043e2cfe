"""Which source goes to each target key, and what is at the keys: of different sources that map to
one key only one moves in a run (DESIGN.md section 4), and the mover looks at what is really at
each source and target with a few list requests per bucket (objects.py)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.fencing import Object
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.objects import ObjectFacts, stat_objects


def one_source_per_key(handles: Iterable[Handle], preferred: Collection[int] = ()) -> tuple[list[Handle], list[Handle]]:
    """Handles whose sources may go to their target keys in this run, and the rest: of different
    source objects that map to one target key only one moves now, a preferred one (see
    already_at_target) before the others, else the first by bucket."""
    first_source: dict[str, str | None] = {}
    movable: list[Handle] = []
    waiting: list[Handle] = []
    for handle in sorted(handles, key=lambda h: (h.key or "", h.id not in preferred, h.bucket or "", h.id)):
        source = first_source.setdefault(handle.key or "", handle.bucket)
        (movable if source == handle.bucket else waiting).append(handle)
    return movable, waiting


def already_at_target(ctx: MoveContext, handles: Sequence[Handle]) -> set[int]:
    """Of handles whose different sources share a target key, those whose bytes (size and ETag) are
    what that key already holds. Such a handle can always be moved there (its own bytes are reused,
    or, if archived, replaced by a live copy), while another source would meet a target conflict
    run after run and keep it waiting for ever. Looked up only for such keys, which are rare: the
    choice is a hint; the claim and the look after it decide."""
    sources_of: dict[str, set[str]] = {}
    for handle in handles:
        sources_of.setdefault(handle.key or "", set()).add(handle.bucket or "")
    shared = {key for key, buckets in sources_of.items() if len(buckets) > 1}
    if not shared:
        return set()
    contested = [h for h in handles if (h.key or "") in shared]
    sources, targets = object_facts(ctx, contested)
    preferred: set[int] = set()
    for handle in contested:
        source, target = sources[(handle.bucket or "", handle.key or "")], targets[handle.key or ""]
        if source is not None and target is not None and (source.size, source.etag) == (target.size, target.etag):
            preferred.add(handle.id)
    return preferred


def object_facts(
    ctx: MoveContext, handles: Sequence[Handle]
) -> tuple[dict[Object, ObjectFacts | None], dict[str, ObjectFacts | None]]:
    """What is at each handle's source and at its target key, by a few list requests per bucket."""
    keys_by_bucket: dict[str, set[str]] = {}
    for handle in handles:
        keys_by_bucket.setdefault(handle.bucket or "", set()).add(handle.key or "")
    sources: dict[Object, ObjectFacts | None] = {}
    for bucket, keys in keys_by_bucket.items():
        sources.update({(bucket, key): found for key, found in stat_objects(ctx.s3, bucket, keys).items()})
    targets = stat_objects(ctx.s3, ctx.target.bucket, {h.key or "" for h in handles})
    return sources, targets
