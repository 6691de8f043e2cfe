"""`costalloc locate HANDLE` over a real move's archives, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import func, select

from costalloc_pipeline.archives.locate import IN_PROGRESS, NOT_REQUESTED, RESTORED, restore_status
from costalloc_pipeline.cli import main
from costalloc_pipeline.schema.repository import move_ledger

from .conftest import Moved


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_locate_shows_the_archive_and_where_the_handle_lives(moved: Moved, capsys):
    handle = moved.repo.handle(moved.first)
    code, out, err = run(capsys, "locate", str(moved.first))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert (
        lines[0] == f"file handle {moved.first} (AVAILABLE) lives at s3://{moved.target}/{handle.key} (STANDARD object)"
    )
    size = len(moved.originals[moved.first])
    assert lines[1] == f"archive 1 of 1: s3://{moved.repo.settings.default_bucket}/{handle.key} (GLACIER, {size} bytes)"
    assert lines[3].endswith("(COSTALLOC_ARCHIVE_RETENTION_DAYS=365)")
    assert lines[4] == "  restore:     not requested"


def test_locate_json_gives_the_expiry_from_the_retention(moved: Moved, capsys, monkeypatch):
    monkeypatch.setenv("COSTALLOC_ARCHIVE_RETENTION_DAYS", "30")
    code, out, _ = run(capsys, "locate", str(moved.first), "--json")
    assert code == 0
    found = json.loads(out)
    assert found["current"]["bucket"] == moved.target
    [archive] = found["archives"]
    assert archive["bucket"] == moved.repo.settings.default_bucket
    assert archive["storage_class"] == "GLACIER"
    assert archive["restore"] == NOT_REQUESTED and archive["restored_until"] is None
    archived_on = dt.datetime.fromisoformat(archive["archived_on"])
    assert dt.datetime.fromisoformat(archive["expires_on"]) - archived_on == dt.timedelta(days=30)


def test_locate_follows_a_restore_in_progress_until_it_is_done(moved: Moved, capsys, slow_restores):
    time.sleep(1.1)
    assert run(capsys, "restore", str(moved.first))[0] == 0
    code, out, _ = run(capsys, "locate", str(moved.first), "--json")
    assert json.loads(out)["archives"][0]["restore"] == IN_PROGRESS
    time.sleep(1.1)
    code, out, _ = run(capsys, "locate", str(moved.first))
    assert code == 0
    assert "  restore:     restored until " in out


def test_an_unknown_handle_is_one_line_and_exit_2(moved: Moved, capsys):
    assert run(capsys, "locate", "999999") == (2, "", "costalloc: file handle 999999 does not exist\n")


def test_a_handle_never_archived_is_one_line_and_exit_2(moved: Moved, capsys):
    never = moved.repo.add_handle(b"never moved")
    code, out, err = run(capsys, "locate", str(never))
    assert (code, out) == (2, "")
    assert err == f"costalloc: file handle {never} has no archived object (the move ledger records none)\n"


def test_a_bad_handle_id_is_one_line_and_exit_2(moved: Moved, capsys):
    with moved.repo.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(move_ledger)).scalar_one()
    assert run(capsys, "locate", "syn12") == (2, "", "costalloc: file handle id 'syn12' is not a positive integer\n")
    with moved.repo.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(move_ledger)).scalar_one() == before


def test_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["locate", "--help"])
    assert stop.value.code == 0
    assert "restore status" in capsys.readouterr().out


def test_the_restore_header_read_as_a_status():
    now = dt.datetime(2026, 12, 2, 12, 0)
    glacier = {"StorageClass": "GLACIER", "ContentLength": 1, "ETag": '"x"'}
    assert restore_status(glacier, now).state == NOT_REQUESTED  # type: ignore[arg-type]
    ongoing = {**glacier, "Restore": 'ongoing-request="true"'}
    assert restore_status(ongoing, now).state == IN_PROGRESS  # type: ignore[arg-type]
    done = {**glacier, "Restore": 'ongoing-request="false", expiry-date="Fri, 04 Dec 2026 00:00:00 GMT"'}
    status = restore_status(done, now)  # type: ignore[arg-type]
    assert (status.state, status.until) == (RESTORED, dt.datetime(2026, 12, 4))
    # Past its expiry the restored copy is gone again.
    assert restore_status(done, dt.datetime(2026, 12, 5)).state == NOT_REQUESTED  # type: ignore[arg-type]
