"""What is at a set of keys, by ListObjectsV2 pages instead of a HEAD per key, on moto's server."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from costalloc_pipeline.mover.objects import ObjectFacts, head_facts, stat_objects
from costalloc_pipeline.s3 import make_s3_client

BUCKET = "listing"


@pytest.fixture
def s3(s3_endpoint: str):
    client = make_s3_client(s3_endpoint, "us-east-1", max_pool_connections=16)
    client.create_bucket(Bucket=BUCKET)
    return client


def put_all(s3, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode() * 3), keys))


def listings(s3) -> list[str]:
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append("list"))
    return calls


def test_dense_keys_take_a_page_per_thousand_and_agree_with_head(s3):
    keys = [f"7/{n:05d}/file.bin" for n in range(1500)]
    put_all(s3, keys)
    wanted = [*keys[100:1400], "7/99999/missing.bin", "7/00100/file.bi", "7/00100/file.bin.old"]
    calls = listings(s3)
    found = stat_objects(s3, BUCKET, wanted)
    assert len(calls) <= 2
    assert set(found) == set(wanted)
    for key in random.Random(1).sample(wanted, 40) + wanted[-3:]:
        assert found[key] == head_facts(s3, BUCKET, key), key


def test_sparse_keys_never_cost_more_than_a_head_each(s3):
    others = [f"{n % 7}/{n:05d}/x" for n in range(1200)]
    wanted = [f"3/{n:05d}/mine" for n in range(0, 1200, 120)]
    put_all(s3, others + wanted[::2])
    calls = listings(s3)
    found = stat_objects(s3, BUCKET, wanted)
    assert len(calls) <= len(wanted)
    assert {key for key, facts in found.items() if facts is not None} == set(wanted[::2])
    assert all(isinstance(found[key], ObjectFacts) and found[key].size == len(key) * 3 for key in wanted[::2])


def test_keys_that_are_prefixes_of_each_other_and_odd_characters(s3):
    keys = ["a", "a/b", "a/b c", "a/b+c", "a/é", "a/b/" + "z" * 200, "b"]
    put_all(s3, keys[:-1])
    found = stat_objects(s3, BUCKET, keys)
    assert {key for key, facts in found.items() if facts is not None} == set(keys[:-1])
    assert found["b"] is None
