"""The embedded S3 of a data folder: its own server, started on demand, restored after a restart."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from costalloc_pipeline.embedded import EmbeddedS3, ensure_embedded_s3, running_embedded_s3
from costalloc_pipeline.s3 import client_config, local_credentials


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[list[Path]]:
    made = [tmp_path / "one", tmp_path / "two"]
    yield made
    for folder in made:
        server = running_embedded_s3(folder)
        if server is not None:
            server.stop()


def client(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=client_config(), **local_credentials(endpoint)
    )


def server_of(folder: Path) -> EmbeddedS3:
    return EmbeddedS3(**json.loads((folder / "s3-server.json").read_text()))


def test_each_data_folder_has_its_own_server(folders):
    one, two = (ensure_embedded_s3(folder) for folder in folders)
    assert one != two
    assert ensure_embedded_s3(folders[0]) == one
    client(one).create_bucket(Bucket="only-in-one")
    assert [b["Name"] for b in client(two).list_buckets()["Buckets"]] == []


def test_a_restarted_server_holds_what_the_old_one_held(folders):
    folder = folders[0]
    s3 = client(ensure_embedded_s3(folder))
    s3.create_bucket(Bucket="kept")
    body = os.urandom(3000)
    s3.put_object(Bucket="kept", Key="a/file.bin", Body=body, ContentType="text/csv")
    s3.put_object(Bucket="kept", Key="gone.bin", Body=b"deleted later")
    s3.delete_object(Bucket="kept", Key="gone.bin")
    s3.copy_object(
        Bucket="kept", Key="a/file.bin", CopySource={"Bucket": "kept", "Key": "a/file.bin"},
        StorageClass="GLACIER", TaggingDirective="REPLACE", Tagging="costalloc:archived=true",
    )
    s3.put_object(Bucket="kept", Key="live.bin", Body=body)

    for _ in range(2):
        before = server_of(folder)
        before.stop()
        endpoint = ensure_embedded_s3(folder)
        assert endpoint == before.endpoint  # the folder keeps its endpoint when the port is free
        assert server_of(folder).pid != before.pid
        s3 = client(endpoint)
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kept")["Contents"])
        assert keys == ["a/file.bin", "live.bin"]
        archived = s3.head_object(Bucket="kept", Key="a/file.bin")
        assert (archived["StorageClass"], archived["ContentType"], archived["ContentLength"]) == ("GLACIER", "text/csv", 3000)
        live = s3.get_object(Bucket="kept", Key="live.bin")["Body"].read()
        assert hashlib.md5(live).hexdigest() == hashlib.md5(body).hexdigest()
