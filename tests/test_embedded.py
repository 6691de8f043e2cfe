"""The embedded S3 of a data folder: its own server, started on demand, restored after a restart."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from costalloc_pipeline.embedded import (
    EmbeddedS3,
    ensure_embedded_s3,
    running_embedded_s3,
)
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
        Bucket="kept",
        Key="a/file.bin",
        CopySource={"Bucket": "kept", "Key": "a/file.bin"},
        StorageClass="GLACIER",
        TaggingDirective="REPLACE",
        Tagging="costalloc:archived=true",
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
        assert (archived["StorageClass"], archived["ContentType"], archived["ContentLength"]) == (
            "GLACIER",
            "text/csv",
            3000,
        )
        live = s3.get_object(Bucket="kept", Key="live.bin")["Body"].read()
        assert hashlib.md5(live).hexdigest() == hashlib.md5(body).hexdigest()


# The embedded server keeps S3's real 5 MiB minimum for every part but the last.
PART = 5 * 1024 * 1024


def test_a_restarted_server_holds_multipart_objects_and_their_uploads(folders):
    folder = folders[0]
    s3 = client(ensure_embedded_s3(folder))
    s3.create_bucket(Bucket="kept")
    # A create whose answer was lost and retried: the client goes on with the second upload id.
    retried = s3.create_multipart_upload(Bucket="kept", Key="a/upload.bin", ContentType="text/plain")["UploadId"]
    uploaded = os.urandom(PART) + os.urandom(1000)
    upload_id = s3.create_multipart_upload(Bucket="kept", Key="a/upload.bin", ContentType="text/csv")["UploadId"]
    parts = [
        {
            "PartNumber": number,
            "ETag": s3.upload_part(
                Bucket="kept", Key="a/upload.bin", UploadId=upload_id, PartNumber=number, Body=chunk
            )["ETag"],
        }
        for number, chunk in ((1, uploaded[:PART]), (2, uploaded[PART:]))
    ]
    s3.complete_multipart_upload(
        Bucket="kept", Key="a/upload.bin", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    small = os.urandom(700)
    s3.put_object(Bucket="kept", Key="small.bin", Body=small)
    upload_id = s3.create_multipart_upload(Bucket="kept", Key="b/copy.bin")["UploadId"]
    copied = [
        {
            "PartNumber": 1,
            "ETag": s3.upload_part_copy(
                Bucket="kept",
                Key="b/copy.bin",
                UploadId=upload_id,
                PartNumber=1,
                CopySource={"Bucket": "kept", "Key": "a/upload.bin"},
                CopySourceRange=f"bytes=0-{PART - 1}",
            )["CopyPartResult"]["ETag"],
        },
        {
            "PartNumber": 2,
            "ETag": s3.upload_part_copy(
                Bucket="kept",
                Key="b/copy.bin",
                UploadId=upload_id,
                PartNumber=2,
                CopySource={"Bucket": "kept", "Key": "small.bin"},
            )["CopyPartResult"]["ETag"],
        },
    ]
    s3.complete_multipart_upload(Bucket="kept", Key="b/copy.bin", UploadId=upload_id, MultipartUpload={"Parts": copied})

    upload_id = s3.create_multipart_upload(Bucket="kept", Key="c/aborted.bin")["UploadId"]
    s3.upload_part(Bucket="kept", Key="c/aborted.bin", UploadId=upload_id, PartNumber=1, Body=b"never completed")
    s3.abort_multipart_upload(Bucket="kept", Key="c/aborted.bin", UploadId=upload_id)

    upload_id = s3.create_multipart_upload(Bucket="kept", Key="d/pending.bin")["UploadId"]
    pending_etag = s3.upload_part(
        Bucket="kept", Key="d/pending.bin", UploadId=upload_id, PartNumber=1, Body=b"in progress"
    )["ETag"]

    expected = {"a/upload.bin": uploaded, "b/copy.bin": uploaded[:PART] + small}
    etags = {key: s3.head_object(Bucket="kept", Key=key)["ETag"] for key in expected}
    for _ in range(2):  # the second start replays what the first replay recorded
        server_of(folder).stop()
        endpoint = ensure_embedded_s3(folder)
        restarted = server_of(folder)
        # The replay uploaded parts again; the server must still look up, never get a twin.
        assert running_embedded_s3(folder) == restarted
        assert ensure_embedded_s3(folder) == endpoint and server_of(folder) == restarted
        s3 = client(endpoint)
        for key, body in expected.items():
            head = s3.head_object(Bucket="kept", Key=key)
            assert (head["ContentLength"], head["ETag"]) == (len(body), etags[key])
            assert s3.get_object(Bucket="kept", Key=key)["Body"].read() == body
        assert s3.head_object(Bucket="kept", Key="a/upload.bin")["ContentType"] == "text/csv"
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kept")["Contents"])
        assert keys == ["a/upload.bin", "b/copy.bin", "small.bin"]
        # Still in progress: the retried create (no parts) and the pending upload with its part.
        uploads = {u["Key"]: u["UploadId"] for u in s3.list_multipart_uploads(Bucket="kept").get("Uploads", [])}
        assert sorted(uploads) == ["a/upload.bin", "d/pending.bin"]
        assert retried not in uploads.values()  # new ids, from the new server
        assert s3.list_parts(Bucket="kept", Key="a/upload.bin", UploadId=uploads["a/upload.bin"]).get("Parts", []) == []
        pending = s3.list_parts(Bucket="kept", Key="d/pending.bin", UploadId=uploads["d/pending.bin"])["Parts"]
        assert [(p["PartNumber"], p["ETag"]) for p in pending] == [(1, pending_etag)]
