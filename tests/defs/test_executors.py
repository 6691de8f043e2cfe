"""How runs execute their steps: COSTALLOC_EXECUTOR, and `auto` sizing a run by its project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.executors import auto_mode
from costalloc_pipeline.defs.location import build_definitions
from costalloc_pipeline.errors import ConfigError
from costalloc_pipeline.placement.estimate import MisplacedEstimate, estimate_misplaced
from costalloc_pipeline.placement.misplaced import find_out_of_place
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.replica.refresh import refresh_entity_replication, refresh_file_replication

ROOT = Path(__file__).resolve().parents[2]
RELOCATION_STEPS = ["files_out_of_place", "relocation.plan_relocation", "relocation.move_files_bundle[?]"]
BOUNDS = (500, 10**9)


def sized(files: int, size: int = 0):
    return lambda project_id: MisplacedEstimate(files, size)


def test_auto_keeps_a_project_of_one_bundle_in_process_and_fans_out_a_larger_one():
    assert auto_mode(RELOCATION_STEPS, "syn7", sized(500, 2048), BOUNDS) == (
        "in_process",
        "syn7 has about 500 misplaced files (2048 bytes)",
    )
    assert auto_mode(RELOCATION_STEPS, "syn7", sized(501), BOUNDS)[0] == "multiprocess"
    # Few files, but more bytes than one bundle holds: bundles of bytes can move in parallel.
    assert auto_mode(RELOCATION_STEPS, "syn7", sized(3, 10**9 + 1), BOUNDS)[0] == "multiprocess"
    # A run of a range of projects fans out; a job without bundles (report, audit) never does.
    assert auto_mode(RELOCATION_STEPS, None, sized(0), BOUNDS)[0] == "multiprocess"
    assert auto_mode(["cost_allocation_storage"], None, sized(10**6), BOUNDS)[0] == "in_process"


def test_the_estimate_counts_the_projects_own_misplaced_handles(stack):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    repository = engine_for(stack.settings.repository_url)
    refresh_entity_replication(repository, repository)
    refresh_file_replication(repository, repository)
    placement = load_placement(repository)
    found = find_out_of_place(repository, project, placement)
    # Planning's own misplaced handles, before it sets the conflicts apart; previews aside.
    own = pd.concat([found.to_move, found.conflicts]).query("not is_preview").drop_duplicates("file_handle_id")
    estimate = estimate_misplaced(repository, project, placement)
    assert estimate == MisplacedEstimate(len(own), int(own["content_size"].sum()))
    assert estimate.files > 0


def test_the_executor_setting_is_the_default_of_every_job_and_a_bad_one_is_refused():
    for setting in ("auto", "in_process", "multiprocess", "celery"):
        job = build_definitions(Settings(executor=setting)).resolve_job_def("relocate_project")
        assert job.executor_def.name == "costalloc"
        mode = job.run_config_schema.config_type.fields["execution"].config_type.fields["config"]
        assert mode.config_type.fields["mode"].default_value == setting
    with pytest.raises(ConfigError, match="COSTALLOC_EXECUTOR must be one of auto, in_process"):
        Settings(executor="threads")


def _environment(settings: Settings, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        **settings.environment(),
        "DAGSTER_HOME": str(home),
    }


# The executor does not depend on the database: the embedded default's is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_readmes_command_runs_a_small_project_in_process(stack, tmp_path):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("projects", [f"syn{project}"])
    executed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            *("job", "execute", "-m", "costalloc_pipeline.definitions", "-j", "relocate_project"),
            *("--tags", json.dumps({"dagster/partition": f"syn{project}"})),
        ],
        env=_environment(stack.settings, home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert executed.returncode == 0, executed.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.is_success
        messages = [record.event_log_entry.message for record in instance.get_records_for_run(run.run_id).records]
    assert any(
        message.startswith(f"executor auto: syn{project} has about ")
        and message.endswith("steps run in the run's process")
        for message in messages
    )
    assert any(message.startswith("Executing steps in process") for message in messages)
    assert not any("Launching subprocess" in message for message in messages)
