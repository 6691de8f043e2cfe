"""Pure naming rules: no server needed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costalloc_pipeline.errors import BadRequest
from costalloc_pipeline.naming import (
    ENTITY_ID_PATTERN,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    bucket_name_for,
    format_entity_id,
    is_valid_bucket_name,
    normalise_name,
    parse_entity_id,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Lab-A  ", "lab-a"),
        ("NIH_Grant.2024", "nih_grant.2024"),
        ("x", "x"),
        ("a" * MAX_NAME_LENGTH, "a" * MAX_NAME_LENGTH),
    ],
)
def test_names_are_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("lab a", "only letters"),
        ("lab/a", "only letters"),
        ("laboratoire-é", "only letters"),
        ("a" * (MAX_NAME_LENGTH + 1), "at most"),
        (42, "string"),
        (None, "string"),
    ],
)
def test_bad_names_are_refused_with_a_reason(raw: object, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        normalise_name(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [("syn123", 123), ("123", 123), ("SYN7", 7), ("sYn007", 7), ("9" * 18, 10**18 - 1)]
)
def test_entity_ids_with_or_without_prefix(raw: str, expected: int) -> None:
    assert parse_entity_id(raw) == expected
    assert format_entity_id(expected) == f"syn{expected}"


@pytest.mark.parametrize(
    "raw",
    [
        "-1",
        "syn-1",
        "0",
        "syn0",
        "9" * 19,
        str(2**63),
        "9" * 41,
        "abc",
        "syn",
        "",
        "12a",
        "1.5",
        "syn 1",
        " syn1",
        "syn1\n",
        "\u0661",
    ],
)
def test_bad_entity_ids_are_a_400(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_entity_id(raw)


def test_bucket_names_are_stable() -> None:
    # A bucket name is persisted with its cost allocation: it must never change across releases.
    assert bucket_name_for("test", "lab-a") == "test-ca-lab-a-1c327e55b394"
    assert bucket_name_for("test", "a_b") == "test-ca-a-b-648fa9b31bc7"


def test_similar_names_get_distinct_buckets() -> None:
    names = ["a_b", "a-b", "a.b", "a__b", "a--b", "ab", "-ab", "ab-", "_", "-", "."]
    buckets = [bucket_name_for("test", name) for name in names]
    assert len(set(buckets)) == len(names)


@pytest.mark.parametrize(
    "name",
    ["a", "-", "...", "a" * MAX_NAME_LENGTH, "_.-" * 21, "1.2.3.4", "xn--abc", "lab-s3alias", "0" * MAX_NAME_LENGTH],
)
@pytest.mark.parametrize("stack", ["test", "prod", "Dev_Stack.1", "a-very-long-stack-name-that-goes-on-and-on"])
def test_bucket_names_are_always_valid(stack: str, name: str) -> None:
    bucket = bucket_name_for(stack, normalise_name(name))
    assert is_valid_bucket_name(bucket), bucket
    assert len(bucket) <= 63


def test_stacks_that_cannot_prefix_a_bucket_are_refused() -> None:
    with pytest.raises(ValueError, match="no letter or digit"):
        bucket_name_for("___", "lab")
    with pytest.raises(ValueError, match="invalid bucket name"):
        bucket_name_for("sthree", "lab")


@pytest.mark.parametrize(
    ("bucket", "valid"),
    [
        ("test-ca-lab-0123456789ab", True),
        ("ab", False),
        ("a" * 64, False),
        ("Upper", False),
        ("under_score", False),
        ("192.168.1.1", False),
        ("a..b", False),
        ("a.-b", False),
        ("-ab", False),
        ("xn--ab", False),
        ("ab-s3alias", False),
        ("test.costalloc.default", True),
    ],
)
def test_bucket_name_rules(bucket: str, valid: bool) -> None:
    assert is_valid_bucket_name(bucket) is valid


# The OpenAPI document publishes these patterns: the service must accept exactly what they admit.
@pytest.mark.parametrize(("rule", "pattern"), [(normalise_name, NAME_PATTERN), (parse_entity_id, ENTITY_ID_PATTERN)])
def test_a_value_is_accepted_exactly_when_the_published_pattern_admits_it(rule, pattern: str) -> None:
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(max_size=80), st.from_regex(pattern, fullmatch=True)))
    def check(raw: str) -> None:
        try:
            rule(raw)
            accepted = True
        except BadRequest:
            accepted = False
        assert accepted == (re.fullmatch(pattern, raw) is not None), raw

    check()
