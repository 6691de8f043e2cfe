"""The S3 client's own parts: how it reads the timestamps of AWS answers."""

from __future__ import annotations

import datetime as dt

from botocore.utils import parse_timestamp

from costalloc_pipeline.s3 import USER_AGENT, make_s3_client, utc_timestamp


def test_s3_timestamps_read_as_botocore_reads_them():
    for value in ("2026-12-07T20:03:37.000Z", "2026-12-07T20:03:37Z", "2026-12-07T20:03:37.123456Z"):
        assert utc_timestamp(value) == parse_timestamp(value)
        assert utc_timestamp(value).utcoffset() == dt.timedelta(0)


def test_other_timestamps_go_to_botocores_parser():
    for value in ("Mon, 07 Dec 2026 20:03:37 GMT", 1796673817, "1796673817.5", "2026-12-07T20:03:37+01:00"):
        assert utc_timestamp(value) == parse_timestamp(value)


def test_clients_send_a_fixed_user_agent():
    client = make_s3_client("http://127.0.0.1:9", "us-east-1")
    assert client.meta.config.user_agent.startswith(USER_AGENT)
