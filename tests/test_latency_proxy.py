"""The benchmark's latency proxy against a real moto server: every request is held back D ms once,
keep-alive connections and large bodies included, and the bytes pass unchanged."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.latency_proxy import LatencyProxy
from costalloc_pipeline.s3 import make_s3_client

DELAY_MS = 80
BUCKET = "proxied"


def _upstream(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.removeprefix("http://").split(":")
    return host, int(port)


def test_every_request_on_a_keep_alive_connection_waits_the_delay_and_gets_the_same_bytes(s3_endpoint):
    direct = make_s3_client(s3_endpoint, "us-east-1", max_pool_connections=1)
    direct.create_bucket(Bucket=BUCKET)
    body = os.urandom(3000)
    direct.put_object(Bucket=BUCKET, Key="k", Body=body)

    with LatencyProxy(*_upstream(s3_endpoint), DELAY_MS) as proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"
        # One pooled connection: all the requests below ride the same keep-alive connection.
        s3 = make_s3_client(proxy.url, "us-east-1", max_pool_connections=1)
        durations = []
        for _ in range(4):
            started = time.perf_counter()
            got = s3.get_object(Bucket=BUCKET, Key="k")["Body"].read()
            durations.append(time.perf_counter() - started)
            assert got == body
        head = s3.head_object(Bucket=BUCKET, Key="k")
    assert min(durations) >= DELAY_MS / 1000
    assert head["ContentLength"] == len(body)
    assert proxy.requests_by_method() == {"GET": 4, "HEAD": 1}
    assert proxy.cpu_seconds() > 0


def test_a_large_upload_counts_and_waits_as_one_request(s3_endpoint):
    """A body of many chunks (and botocore's `Expect: 100-continue` above 1 MB) is one request."""
    body = os.urandom(4 * 1024 * 1024)
    with LatencyProxy(*_upstream(s3_endpoint), DELAY_MS) as proxy:
        s3 = make_s3_client(proxy.url, "us-east-1", max_pool_connections=1)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="large", Body=body)
        got = s3.get_object(Bucket=BUCKET, Key="large")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    assert proxy.requests_by_method() == {"PUT": 2, "GET": 1}


def test_concurrent_connections_wait_side_by_side_not_in_turn(s3_endpoint):
    requests = 16
    with LatencyProxy(*_upstream(s3_endpoint), 200) as proxy:
        s3 = make_s3_client(proxy.url, "us-east-1", max_pool_connections=requests)
        s3.create_bucket(Bucket=BUCKET)
        started = time.perf_counter()
        with ThreadPoolExecutor(requests) as pool:
            list(pool.map(lambda n: s3.put_object(Bucket=BUCKET, Key=f"k{n}", Body=b"x"), range(requests)))
        elapsed = time.perf_counter() - started
    assert proxy.requests_by_method() == {"PUT": requests + 1}
    # In turn they would take 16 x 0.2 s; side by side about one delay (generous for a busy machine).
    assert elapsed < requests * 0.2 / 2


def test_a_negative_delay_is_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        LatencyProxy("127.0.0.1", 1, -1)
