"""What one request of each kind costs moto, in CPU: why the race's ratios stop where they do.

costalloc's second request per file is an archive copy (DESIGN.md section 4 step 5: the archive
must be a new object); the peers' is a delete. With moto as the bottleneck, the ratio of these
costs bounds costalloc's throughput against theirs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.servers import MotoServer
from costalloc_pipeline.mover.archive import ARCHIVE_TAGGING
from costalloc_pipeline.mover.copier import NO_TAGS
from costalloc_pipeline.s3 import make_s3_client

SOURCE, TARGET = "costs-source", "costs-target"
THREADS = 16


def _kinds(md5: str) -> dict[str, Callable[[Any, str], object]]:
    return {
        "PutObject (set-up)": lambda s3, key: s3.put_object(Bucket=SOURCE, Key=key, Body=b"x" * 1024),
        "CopyObject, plain (peers)": lambda s3, key: s3.copy_object(
            Bucket=TARGET, Key=key, CopySource={"Bucket": SOURCE, "Key": key}
        ),
        "CopyObject, costalloc's verified copy": lambda s3, key: s3.copy_object(
            Bucket=TARGET, Key=key, CopySource={"Bucket": SOURCE, "Key": key}, CopySourceIfMatch=f'"{md5}"', **NO_TAGS
        ),
        "CopyObject, costalloc's archive": lambda s3, key: s3.copy_object(
            Bucket=SOURCE,
            Key=key,
            CopySource={"Bucket": SOURCE, "Key": key},
            StorageClass="GLACIER",
            MetadataDirective="COPY",
            TaggingDirective="REPLACE",
            Tagging=ARCHIVE_TAGGING,
        ),
        "DeleteObject (peers)": lambda s3, key: s3.delete_object(Bucket=TARGET, Key=key),
    }


def measure_request_costs(moto: MotoServer, requests: int) -> dict[str, float]:
    """moto CPU milliseconds per request, by kind, each kind `requests` times on 1 KiB objects."""
    moto.reset()
    s3 = make_s3_client(moto.endpoint, "us-east-1", max_pool_connections=THREADS)
    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=TARGET)
    keys = [f"k/{n}" for n in range(requests)]
    costs: dict[str, float] = {}
    with ThreadPoolExecutor(THREADS) as pool:
        for kind, call in _kinds(hashlib.md5(b"x" * 1024).hexdigest()).items():
            before = moto.cpu_seconds()
            # pool.map finishes within this iteration; `call` is bound anyway so it cannot be late.
            list(pool.map(lambda key, call=call: call(s3, key), keys))
            costs[kind] = (moto.cpu_seconds() - before) * 1000 / requests
    moto.reset()
    return costs


def peer_bound(costs: dict[str, float]) -> float:
    """costalloc/peer throughput when moto is the bottleneck and equally busy for both."""
    peers = costs["CopyObject, plain (peers)"] + costs["DeleteObject (peers)"]
    ours = costs["CopyObject, costalloc's verified copy"] + costs["CopyObject, costalloc's archive"]
    return peers / ours
