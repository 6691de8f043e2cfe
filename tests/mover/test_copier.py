"""The copy decision, purely: what is at the source and at the target key decides it."""

from __future__ import annotations

import hashlib

import pytest

from costalloc_pipeline.mover.copy_plan import Action, plan_copy
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.objects import ObjectFacts

BODY_MD5 = hashlib.md5(b"the handle's bytes").hexdigest()
MULTIPART = "0123456789abcdef0123456789abcdef-3"


def handle(size: int | None = 18, md5: str | None = BODY_MD5) -> Handle:
    return Handle(1, "etag", "default", "k", size, md5, 1, "AVAILABLE", "S3")


def facts(etag: str = BODY_MD5, size: int = 18, storage_class: str = "STANDARD") -> ObjectFacts:
    return ObjectFacts(size, etag, storage_class)


def plan(
    target: ObjectFacts | None,
    source: ObjectFacts | None = None,
    own: set[str] | None = None,
    referenced: bool = False,
    **h,
):
    if own is None:
        own = set()
    return plan_copy(handle(**h), source or facts(), target, set(), own, referenced)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (None, "the source object is missing"),
        (facts(storage_class="GLACIER"), "the source object is in GLACIER, not readable"),
        (facts(size=40), "the object is 40 bytes, the handle records 18"),
        (facts(etag="f" * 32), f"the object's MD5 {'f' * 32} differs from the handle's {BODY_MD5}"),
    ],
)
def test_a_source_that_is_not_the_handles_bytes_fails_the_file(source, reason):
    decided = plan_copy(handle(), source, None, set(), set(), False)
    assert (decided.action, decided.reason) == (Action.FAIL, reason)


def test_a_free_key_is_copied_to_on_condition_it_stays_free():
    assert plan(None).action is Action.COPY and plan(None).replaces is None


def test_the_same_bytes_are_reused_and_an_archive_of_them_replaced():
    assert plan(facts()).action is Action.REUSE
    archive = plan(facts(storage_class="GLACIER"))
    assert (archive.action, archive.replaces) == (Action.COPY, BODY_MD5)
    # A multipart source and an archive made with the same parts: one ETag, the same bytes.
    multipart = plan(facts(MULTIPART, storage_class="DEEP_ARCHIVE"), source=facts(MULTIPART))
    assert (multipart.action, multipart.replaces) == (Action.COPY, MULTIPART)


def test_other_bytes_are_a_conflict_unless_they_are_costallocs_own_unreferenced_copy():
    other = facts("e" * 32)
    assert plan(other).action is Action.CONFLICT
    assert plan(other, own={"e" * 32}, referenced=True).action is Action.CONFLICT
    replaced = plan(other, own={"e" * 32})
    assert (replaced.action, replaced.replaces) == (Action.COPY, "e" * 32)
    assert plan(facts("e" * 32, storage_class="GLACIER")).action is Action.CONFLICT


def test_a_multipart_object_of_the_right_size_is_read_before_it_is_judged():
    decided = plan(facts(MULTIPART))
    assert decided.action is Action.READ_BACK and decided.otherwise.action is Action.CONFLICT
    # Without an MD5 anywhere nothing can be proven by reading: the object is judged as it is.
    assert plan(facts(MULTIPART), source=facts(MULTIPART.replace("0", "1")), md5=None).action is Action.CONFLICT
