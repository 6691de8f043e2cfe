"""Archives made by the Dagster relocation job itself (the `stack` fixture: a seeded repository,
sensor and runs), found, restored and reinstated with the commands."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import func, select

from costalloc_pipeline.schema.repository import files, move_ledger

from .test_locate import run


def _archived_handle_with_a_key_of_its_own(stack) -> int:
    with stack.repository.connect() as conn:
        shared = select(files.c.key).group_by(files.c.key).having(func.count() > 1)
        return conn.execute(
            select(func.min(move_ledger.c.file_handle_id))
            .join(files, files.c.id == move_ledger.c.file_handle_id)
            .where(move_ledger.c.archive_key.is_not(None), files.c.key.not_in(shared))
        ).scalar_one()


def test_a_handle_moved_twice_is_reinstated_from_its_newest_archive(stack, environment, capsys):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    stack.runner.tick()
    stack.assign(project, "imaging")
    stack.runner.tick()
    handle_id = _archived_handle_with_a_key_of_its_own(stack)
    with stack.repository.connect() as conn:
        handle = conn.execute(select(files).where(files.c.id == handle_id)).one()

    code, out, _ = run(capsys, "locate", str(handle_id), "--json")
    assert code == 0
    found = json.loads(out)
    genomics = found["archives"][0]["bucket"]
    assert found["current"]["bucket"] == handle.bucket_name
    assert [a["bucket"] for a in found["archives"]] == [genomics, stack.settings.default_bucket]
    newest, oldest = found["archives"]
    # The allocation's bucket is versioned: the archive is the noncurrent version its DeleteObject
    # left (still STANDARD here: moto runs no lifecycle rule). The default bucket is not: a copy.
    assert (oldest["version_id"], oldest["storage_class"]) == (None, "GLACIER")
    assert newest["version_id"] is not None
    assert stack.s3.head_object(Bucket=genomics, Key=handle.key, VersionId=newest["version_id"])["ETag"] == (
        f'"{handle.content_md5}"'
    )

    # The live copy is lost: the newest archive (the genomics bucket's) brings it back.
    stack.s3.delete_object(Bucket=handle.bucket_name, Key=handle.key)
    code, out, _ = run(capsys, "restore", str(handle_id), "--reinstate")
    assert code == 0, out
    assert out.splitlines()[-1] == (
        f"file handle {handle_id}: reinstated from s3://{genomics}/{handle.key} (version {newest['version_id']}) "
        f"to s3://{handle.bucket_name}/{handle.key}"
    )
    body = stack.s3.get_object(Bucket=handle.bucket_name, Key=handle.key)["Body"].read()
    assert (len(body), hashlib.md5(body).hexdigest()) == (handle.content_size, handle.content_md5)
    code, out, _ = run(capsys, "verify")
    assert (code, out.splitlines()[-1]) == (0, "no violations")
