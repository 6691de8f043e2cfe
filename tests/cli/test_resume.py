"""`costalloc resume` after a real SIGKILL of a worker: it finishes the moves, copying nothing again."""

from __future__ import annotations

import pytest
from faults.repository import make_repo

from costalloc_pipeline.cli import main
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.recovery import TARGET_CHANGED, Interrupted, plan_resume
from costalloc_pipeline.schema.repository import MoveState

PROJECT = 10


@pytest.fixture
def repo(environment, entities):
    return make_repo(environment, entities)


def resume(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["resume", *argv])
    return code, capsys.readouterr().out


def test_plan_resume_moves_again_toward_the_current_target_only() -> None:
    rows = [
        Interrupted(1, 10, 100, "genomics-bucket"),
        Interrupted(2, 10, 101, "old-bucket"),
        Interrupted(3, 10, 100, "genomics-bucket"),
        Interrupted(4, 20, 200, "imaging-bucket"),
    ]
    targets = {10: "genomics-bucket", 20: "imaging-bucket", 30: "default-bucket"}
    plans = plan_resume(rows, {30}, targets.__getitem__)
    assert [(p.project_id, p.move_again, p.close) for p in plans] == [
        (10, [100], {2: TARGET_CHANGED.format(bucket="genomics-bucket")}),
        (20, [200], {}),
        (30, [], {}),
    ]


def test_nothing_to_resume(repo, capsys):
    assert resume(capsys) == (0, "no interrupted moves\n")


def test_resume_archives_after_a_crash_after_the_repoint(repo, capsys):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    repo.crash(PROJECT, list(originals), "after-repoint")

    code, out = resume(capsys)
    assert code == 0
    assert out.startswith(f"syn{PROJECT}: archived 3 sources, kept 0 still referenced, moved 0 files")
    assert all(repo.handle(h).bucket_name == target for h in originals)
    assert all(repo.ledger_states(h) == [MoveState.DONE.value] for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_resume_moves_again_reusing_the_copies(repo, capsys):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    repo.crash(PROJECT, list(originals), "before-repoint")

    code, out = resume(capsys, f"syn{PROJECT}")
    assert code == 0
    assert "moved 3 files (3 verified copies reused), closed 0 stale ledger rows" in out
    assert all(repo.handle(h).bucket_name == target for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_an_interrupted_move_toward_an_old_target_is_closed(repo, capsys):
    repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    repo.crash(PROJECT, list(originals), "before-repoint")
    # The project went to another cost allocation meanwhile: the old copies are not to be used.
    repo.assign(PROJECT, "imaging")

    code, out = resume(capsys)
    assert code == 0
    assert "moved 0 files (0 verified copies reused), closed 2 stale ledger rows" in out
    assert all(repo.handle(h).bucket_name == repo.settings.default_bucket for h in originals)
    assert all(repo.ledger_states(h) == [MoveState.SKIPPED.value] for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_a_bad_project_id_is_one_line_and_exit_2(repo, capsys):
    assert main(["resume", "syn-what"]) == 2
    assert capsys.readouterr().err.startswith("costalloc: entity id 'syn-what'")


def test_sources_within_their_grace_period_wait_and_say_so(repo, capsys, monkeypatch):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    move_bundle(repo.context(PROJECT, archive_grace_seconds=3600), list(originals))
    repo.end_run(PROJECT, "run-1")
    monkeypatch.setenv("COSTALLOC_ARCHIVE_GRACE_SECONDS", "3600")

    code, out = resume(capsys)
    assert code == 0
    assert out.startswith("no interrupted moves\n")
    assert "2 sources stay live until their grace period is over (COSTALLOC_ARCHIVE_GRACE_SECONDS=3600)" in out
    assert all(repo.ledger_states(h) == [MoveState.REPOINTED.value] for h in originals)
    assert all(repo.handle(h).bucket_name == target for h in originals)
    assert repo.audit(archive_grace_seconds=3600).counts == {}
