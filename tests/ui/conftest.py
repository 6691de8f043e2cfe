"""A real relocation run on a Dagster instance of its own, the Dagster UI serving that instance, and
Debian's Chromium driven by Playwright to look at it as a person would.

Everything is real: moto's S3 server over HTTP (the session's, emptied first), a SQLite repository,
`relocate_project` executed for one project's partition on a DAGSTER_HOME instance with the repo's
dagster.yaml, and `dagster-webserver` loading the code location from the environment, as
`make dev` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from conftest import SMALL_REPOSITORY, Stack
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import dispose_engine
from costalloc_pipeline.defs.jobs import report_storage
from costalloc_pipeline.defs.local_runner import QUIET, LocalRunner
from costalloc_pipeline.defs.partitions import project_partition_key
from costalloc_pipeline.embedded import free_port
from costalloc_pipeline.seed import seed_repository
from costalloc_pipeline.storage import bucket_usage

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "build" / "ui-screenshots"
CHROMIUM = "/usr/bin/chromium"
# No sandbox: CI runs as root. The rest keeps Chromium from reaching out (there is no network).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALLOCATION = "genomics"
# Small bundles, so that the run moves the project in several bundles and logs one observation each.
BUNDLE_MAX_FILES = 6
WEBSERVER_START_SECONDS = 180
RELOCATION = dg.AssetKey("relocation")


@dataclass(frozen=True)
class MovedProject:
    """What the fixture's relocation run did, for the pages to show."""

    settings: Settings
    dagster_home: Path
    project_id: int
    partition_key: str
    allocation: str
    run_id: str
    moved_files: int
    moved_bytes: int
    # Bundles the run moved, and observations of `relocation` for the partition it logged.
    bundles: int
    observations: int
    # The allocation's bucket after the move, by the repository's records (what the report shows).
    allocation_files: int
    allocation_bytes: int


def _write_dagster_yaml(dagster_home: Path) -> None:
    """The repo's dagster.yaml (its concurrency pools included), with SQLite storage in the temp dir."""
    repo_config = (REPO_ROOT / "dagster.yaml").read_text()
    # Appended keys must not repeat the repo's own (YAML would keep only one of the two). The
    # repo's file turns the UI's community invitation off (nux), which would cover every page.
    assert not re.search(r"^storage:", repo_config, re.MULTILINE), "dagster.yaml now sets storage"
    assert re.search(r"^nux:\n  enabled: false", repo_config, re.MULTILINE), "dagster.yaml lets nux cover the UI"
    test_config = f"\nstorage:\n  sqlite:\n    base_dir: {dagster_home / 'storage'}\n"
    (dagster_home / "dagster.yaml").write_text(repo_config + test_config)


def _empty_moto(endpoint: str) -> None:
    # The session's moto server holds whatever the previous test of this worker left.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()


@pytest.fixture(scope="module")
def moved_project(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, sqlite_template: Path
) -> Iterator[MovedProject]:
    """One project of a small seeded repository assigned to a cost allocation and moved by a real
    `relocate_project` run on a DAGSTER_HOME instance; the storage report materialized after it."""
    root = tmp_path_factory.mktemp("ui")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    _write_dagster_yaml(dagster_home)
    database = root / "repository.sqlite"
    shutil.copy(sqlite_template, database)
    _empty_moto(moto_endpoint)
    # As the suite's `settings` fixture, on one SQLite file for the repository and the replica.
    settings = Settings(
        data_dir=root / "data",
        repository_url=f"sqlite:///{database}",
        replica_url=f"sqlite:///{database}",
        s3_endpoint_url=moto_endpoint,
        stack="test",
        archive_grace_seconds=0,
        bundle_max_files=BUNDLE_MAX_FILES,
    )
    report = seed_repository(settings, SMALL_REPOSITORY)
    # One project of three is assigned: the others stay where they are, without a partition.
    project_id = report.project_ids[0]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        stack = Stack(settings, report, LocalRunner(settings, instance))
        stack.assign(project_id, ALLOCATION)
        # The sensor sees the assignment, adds the partition and requests the run, as the daemon would.
        [run] = stack.runner.tick()
        assert run.success, "the relocation run failed; the UI would have nothing to show"
        summary = run.output_for_node("relocation.summarize_relocation")
        assert summary["moved_bytes"] > 0, summary
        partition_key = project_partition_key(project_id)
        [materialization] = [
            event.step_materialization_data.materialization
            for event in run.get_asset_materialization_events()
            if event.asset_key == RELOCATION
        ]
        observations = [event for event in run.get_asset_observation_events() if event.asset_key == RELOCATION]
        storage = stack.runner.definitions.resolve_job_def(report_storage.name)
        assert storage.execute_in_process(instance=instance, run_config=QUIET).success
        [usage] = [entry for entry in bucket_usage(stack.repository) if entry.cost_allocation == ALLOCATION]
        yield MovedProject(
            settings=settings,
            dagster_home=dagster_home,
            project_id=project_id,
            partition_key=partition_key,
            allocation=ALLOCATION,
            run_id=run.run_id,
            moved_files=summary["moved_files"],
            moved_bytes=summary["moved_bytes"],
            bundles=int(materialization.metadata["bundles"].value),
            observations=sum(1 for event in observations if event.partition == partition_key),
            allocation_files=usage.files,
            allocation_bytes=usage.bytes,
        )
    dispose_engine(settings.repository_url)


def _environment(moved: MovedProject) -> dict[str, str]:
    """The webserver's environment: the fixture's instance and the same settings the run had."""
    settings = moved.settings
    environment = {name: value for name, value in os.environ.items() if not name.startswith("COSTALLOC_")}
    environment.update({"DAGSTER_HOME": str(moved.dagster_home), **settings.environment()})
    return environment


_LOCATION_STATUS = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def _location_loaded(base_url: str) -> bool:
    """Whether the code location has loaded; raises when it failed to (the pages would be empty)."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": _LOCATION_STATUS}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    for entry in entries:
        loaded = entry["locationOrLoadError"]
        if loaded is not None and loaded["__typename"] == "PythonError":
            raise AssertionError(f"code location {entry['name']} failed to load: {loaded['message']}")
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


def _answering(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/server_info", timeout=5) as response:
            return response.status == 200 and _location_loaded(base_url)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The webserver and the code server it spawned: SIGTERM to its process group, then SIGKILL to
    whatever of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def webserver(moved_project: MovedProject, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dagster-webserver` on a free port, read-only, serving the fixture's instance; its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("webserver") / "webserver.log"
    command = [
        str(Path(sys.executable).with_name("dagster-webserver")),
        *("-m", "costalloc_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port), "--read-only"),
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            env=_environment(moved_project),
            cwd=moved_project.dagster_home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WEBSERVER_START_SECONDS
        while not _answering(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dagster-webserver did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def playwright_driver(webserver: str) -> Iterator[Playwright]:
    """Playwright's driver, started once the run is over: its event loop must not be the one of
    this thread while Dagster executes the run in process."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium. A browser that cannot start fails the test: it never skips."""
    try:
        chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as error:  # noqa: BLE001 - whatever stops the browser is this test's failure
        pytest.fail(f"Chromium ({CHROMIUM}) did not start; `apt-get install chromium` installs it: {error}")
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page, wide and tall enough that Dagster's panels show without scrolling (they scroll
    inside the page, so a full-page screenshot is as large as the viewport)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """build/ui-screenshots/, emptied: what it holds after a run is what that run saw."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS
