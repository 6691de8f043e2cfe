"""The `costalloc` command in process: init, team, and the cost allocation operations."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from costalloc_pipeline.api import create_app
from costalloc_pipeline.cli import main
from costalloc_pipeline.config import Settings


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _token(output: str) -> str:
    return next(line.rsplit(" ", 1)[1] for line in output.splitlines() if "token" in line)


def test_init_prints_the_endpoint_and_the_admin_token_once(environment: Settings, capsys) -> None:
    code, out, _ = _run(capsys, "init")
    assert code == 0
    assert f"S3 endpoint: {environment.s3_endpoint_url}" in out
    token = _token(out)
    client = TestClient(create_app(environment), headers={"Authorization": f"Bearer {token}"})
    assert client.get("/costAllocation").status_code == 200

    code, out, _ = _run(capsys, "init")
    assert code == 0
    assert "already initialised" in out
    assert "cat_" not in out


def test_team_members_get_a_token_and_lose_access_when_removed(environment: Settings, capsys) -> None:
    _run(capsys, "init")
    code, out, _ = _run(capsys, "team", "add-member", "alice")
    assert code == 0
    client = TestClient(create_app(environment), headers={"Authorization": f"Bearer {_token(out)}"})
    assert client.get("/costAllocation").status_code == 200

    assert _run(capsys, "team", "remove-member", "alice")[0] == 0
    assert client.get("/costAllocation").status_code == 403
    code, _, err = _run(capsys, "team", "remove-member", "alice")
    assert (code, err) == (2, "costalloc: user alice is not a member of the Cost Allocation Team\n")


def test_cost_allocation_operations(environment: Settings, entities, capsys) -> None:
    _run(capsys, "init")
    for project in (10, 11, 12):
        entities.project(project)
    code, out, _ = _run(capsys, "assign", "syn10", "Lab-A")
    assert code == 0
    lab_a = json.loads(out)
    assert (lab_a["name"], lab_a["projects"]) == ("lab-a", ["syn10"])
    _run(capsys, "assign", "11", "lab-a")
    _run(capsys, "assign", "syn12", "lab-b")

    assert json.loads(_run(capsys, "get", "syn11")[1])["name"] == "lab-a"
    first = json.loads(_run(capsys, "list", "--limit", "1")[1])
    assert [ca["name"] for ca in first["results"]] == ["lab-a"]
    second = json.loads(_run(capsys, "list", "--limit", "1", "--next-page-token", first["nextPageToken"])[1])
    assert [ca["name"] for ca in second["results"]] == ["lab-b"] and "nextPageToken" not in second

    destination = json.loads(_run(capsys, "upload-destination", "syn12")[1])
    assert destination["costAllocation"] == "lab-b"
    assert _run(capsys, "unassign", "syn12")[0] == 0
    destination = json.loads(_run(capsys, "upload-destination", "syn12")[1])
    assert destination["bucket"] == environment.default_bucket


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("assign", "syn-1", "lab"), "entity id"),
        (("assign", "syn10", "bad name"), "may contain only"),
        (("assign", "syn999", "lab"), "does not exist"),
        (("get", "syn10"), "has no cost allocation"),
        (("unassign", "syn10"), "has no cost allocation"),
        (("list", "--next-page-token", "junk"), "nextPageToken"),
        (("list", "--limit", "1000"), "limit"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    environment: Settings, entities, capsys, argv: tuple[str, ...], reason: str
) -> None:
    _run(capsys, "init")
    entities.project(10)
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and reason in err and err.startswith("costalloc: ")


def test_commands_before_init_say_so(environment: Settings, capsys) -> None:
    for argv in (("list",), ("get", "syn1"), ("team", "add-member", "alice")):
        code, _, err = _run(capsys, *argv)
        assert code == 2
        assert "run `costalloc init` first" in err


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("init",),
        ("serve",),
        ("team",),
        ("team", "add-member"),
        ("team", "remove-member"),
        ("list",),
        ("get",),
        ("assign",),
        ("unassign",),
        ("upload-destination",),
    ],
)
def test_every_command_has_help(argv: tuple[str, ...], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: costalloc" in capsys.readouterr().out
