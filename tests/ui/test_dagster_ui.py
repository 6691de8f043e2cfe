"""The Dagster UI shows every project's move as it happens, tested in a real browser.

Each test opens one page a person would look at after the fixture's real relocation run, asserts
what they would look for there, and leaves a screenshot of it in build/ui-screenshots/ (also when
the assertion fails, to show what was there instead).

The tests in the first part need nothing but a run and the storage report. Those in the second part
check the contract of the per-project UI: partition keys `syn<id>`, the check `no_misplaced_files`
attached to `relocation` and partitioned like it (a result per project), and an observation of
`relocation` per bundle with the partition's progress (plotted over time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Locator, Page, expect

from .conftest import MovedProject

# The UI loads slowly on two cores: every wait is generous, and none is a sleep.
VISIBLE = 60_000
CHECK = "no_misplaced_files"
OBSERVED_KEYS = ("misplaced_files", "misplaced_bytes", "moved_bytes", "percent_done")


@contextmanager
def showing(page: Page, screenshots: Path, name: str) -> Iterator[None]:
    """The page's screenshot, `name`.png, once the assertions inside are done (or have failed)."""
    try:
        yield
    finally:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def open_page(page: Page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}{path}", wait_until="domcontentloaded")


def visible_text(page: Page | Locator, text: str) -> Locator:
    """The visible element showing exactly `text` (Dagster also renders hidden copies, to measure
    truncated names)."""
    return page.get_by_text(text, exact=True).filter(visible=True).first


def scroll_to_top(locator: Locator) -> None:
    """Brings the element to the top of the panel it scrolls in (Dagster's panels scroll inside the
    page, so a screenshot shows only what is scrolled into view)."""
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")


def metadata_row(scope: Page | Locator, key: str) -> Locator:
    """The rendered rows of metadata tables in `scope` whose key is `key`."""
    # The inner locator of `has` is matched inside each row, so it starts from the page.
    page = scope if isinstance(scope, Page) else scope.page
    return scope.locator("tr").filter(has=page.get_by_text(key, exact=True)).filter(visible=True)


def expect_metadata(scope: Page | Locator, key: str, value: str) -> None:
    """A person reads the value next to the key: the row is in view (not scrolled away or cut off by
    its panel) and its second cell is exactly `value`."""
    row = metadata_row(scope, key).first
    expect(row).to_be_in_viewport(timeout=VISIBLE)
    expect(row.locator("td").nth(1)).to_have_text(value, timeout=VISIBLE)


def run_path(run_id: str, logs: str | None = None) -> str:
    return f"/runs/{run_id}" + (f"?logs={quote(logs)}" if logs else "")


# --- What the pipeline shows today ---


def test_the_asset_page_shows_the_moved_partition(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """The asset `relocation`, Partitions tab, the project's partition: materialized by the run,
    with the bytes it moved."""
    key = moved_project.partition_key
    with showing(page, screenshots, f"relocation-partition-{key}"):
        open_page(page, webserver, f"/assets/relocation?view=partitions&partition={quote(key)}")
        expect(page.get_by_role("tab", name="Partitions").first).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, "Materialized")).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, key)).to_be_visible(timeout=VISIBLE)
        # The detail panel names the partition and links the run that materialized it.
        expect(page.get_by_role("link", name=moved_project.run_id[:8])).to_be_visible(timeout=VISIBLE)
        expect_metadata(page, "moved_bytes", str(moved_project.moved_bytes))
        expect_metadata(page, "moved_files", str(moved_project.moved_files))
        expect_metadata(page, "failed_files", "0")


def test_the_run_page_shows_the_successful_move_of_the_partition(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """The run that moved the files: its job, its partition, success, and the log's last event."""
    with showing(page, screenshots, "run-relocate_project"):
        open_page(page, webserver, run_path(moved_project.run_id))
        expect(visible_text(page, "Success")).to_be_visible(timeout=VISIBLE)
        expect(page.get_by_role("link", name="relocate_project").first).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, f"partition: {moved_project.partition_key}")).to_be_visible(timeout=VISIBLE)
        # The log ends with the run's last event.
        expect(page.get_by_text('Finished execution of run for "relocate_project".')).to_be_visible(timeout=VISIBLE)


def test_the_storage_report_page_shows_bytes_and_files_per_cost_allocation(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """`cost_allocation_storage` after the move: the allocation's bucket holds the project's files."""
    allocation = moved_project.allocation
    with showing(page, screenshots, "cost_allocation_storage"):
        open_page(page, webserver, "/assets/cost_allocation_storage")
        expect(visible_text(page, "Latest materialization")).to_be_visible(timeout=VISIBLE)
        metadata = page.locator("table").filter(has=page.get_by_text(f"bytes:{allocation}", exact=True))
        # On the overview each row is key | timestamp | value.
        for key, value in (
            (f"bytes:{allocation}", moved_project.allocation_bytes),
            (f"files:{allocation}", moved_project.allocation_files),
        ):
            row = metadata_row(metadata, key).first
            expect(row).to_be_in_viewport(timeout=VISIBLE)
            expect(row.locator("td").last).to_have_text(str(value), timeout=VISIBLE)
    assert moved_project.allocation_bytes > 0


def test_the_storage_report_plots_bytes_per_cost_allocation(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """The same metadata as plots (Metadata, Plots): one chart per numeric key, over time."""
    allocation = moved_project.allocation
    with showing(page, screenshots, "cost_allocation_storage-plots"):
        open_page(page, webserver, "/assets/cost_allocation_storage")
        expect(visible_text(page, "Latest materialization")).to_be_visible(timeout=VISIBLE)
        page.get_by_role("button", name="Plots").click()
        # One chart per key, in the order of the keys' names.
        expect(visible_text(page, f"bytes:{allocation}")).to_be_visible(timeout=VISIBLE)
        scroll_to_top(visible_text(page, f"bytes:{allocation}"))
        for key in (f"bytes:{allocation}", f"files:{allocation}"):
            expect(visible_text(page, key)).to_be_in_viewport(timeout=VISIBLE)
        # The charts themselves are drawn on canvases.
        expect(page.locator("canvas").first).to_be_visible(timeout=VISIBLE)


# --- The contract of the per-project UI ---


def test_project_partitions_are_keyed_syn_and_the_id(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """The partitions a person picks from are named as in the repository: syn<id>."""
    with showing(page, screenshots, "relocation-partitions"):
        open_page(page, webserver, "/assets/relocation?view=partitions")
        expect(visible_text(page, "Materialized (1)")).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, f"syn{moved_project.project_id}")).to_be_visible(timeout=VISIBLE)
    assert moved_project.partition_key == f"syn{moved_project.project_id}"


def test_the_check_shows_the_partition_passed_with_its_progress(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """`relocation`, Checks tab, `no_misplaced_files`: its latest execution is the project's
    partition, passed, at 100% with nothing misplaced."""
    key = moved_project.partition_key
    with showing(page, screenshots, f"check-{CHECK}-latest-execution"):
        open_page(page, webserver, f"/assets/relocation?view=checks&checkDetail={CHECK}")
        expect(visible_text(page, "Latest execution")).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, CHECK)).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, "Passed")).to_be_visible(timeout=VISIBLE)
        # The latest execution's Partition column.
        expect(visible_text(page, key)).to_be_visible(timeout=VISIBLE)
        _expect_check_metadata(page, moved_project)


def test_the_check_shows_a_result_per_partition(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """The check's Partitions tab: a result per project partition; the moved project's passed."""
    key = moved_project.partition_key
    with showing(page, screenshots, f"check-{CHECK}-partition-{key}"):
        open_page(page, webserver, f"/assets/relocation?view=checks&checkDetail={CHECK}")
        expect(visible_text(page, "Latest execution")).to_be_visible(timeout=VISIBLE)
        # The asset's tabs come first; the check's own Partitions tab is the last one.
        page.get_by_role("tab", name="Partitions").last.click()
        # Only assigned projects have a partition: the moved one, passed.
        expect(visible_text(page, "Passed (1)")).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, "Failed (0)")).to_be_visible(timeout=VISIBLE)
        # The partition's chip in the selector above comes first; its entry in the list below, last.
        page.get_by_text(key, exact=True).filter(visible=True).last.click()
        expect(page.get_by_text(re.compile(r"View all historical executions"))).to_be_visible(timeout=VISIBLE)
        expect(visible_text(page, "Passed")).to_be_visible(timeout=VISIBLE)
        _expect_check_metadata(page, moved_project)


def _expect_check_metadata(page: Page, moved_project: MovedProject) -> None:
    expect_metadata(page, "project", moved_project.partition_key)
    expect_metadata(page, "misplaced_files", "0")
    expect_metadata(page, "misplaced_bytes", "0")
    expect_metadata(page, "moved_bytes", str(moved_project.moved_bytes))
    # A float of 100.0 shows as 100.
    expect_metadata(page, "percent_done", "100")


def test_the_run_page_shows_an_observation_per_bundle(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """The run's log, filtered to observations: each bundle told the partition's progress; the last
    one, at the bottom where the log scrolls to, says the move is done."""
    with showing(page, screenshots, "run-relocate_project-observations"):
        open_page(page, webserver, run_path(moved_project.run_id, logs="type:ASSET_OBSERVATION"))
        expect(page.get_by_placeholder("Filter…")).to_have_value("type:ASSET_OBSERVATION", timeout=VISIBLE)
        tags = page.get_by_text("ASSET_OBSERVATION", exact=True).filter(visible=True)
        expect(tags.first).to_be_visible(timeout=VISIBLE)
        # A log row is the nearest block around its event type that holds a button ("View full message").
        last = tags.last.locator("xpath=ancestor::div[.//button][1]")
        expect_metadata(last, "partition", moved_project.partition_key)
        expect_metadata(last, "misplaced_files", "0")
    # A row shows the first lines of its metadata; the rest is behind "View full message".
    with showing(page, screenshots, "run-relocate_project-last-observation"):
        last.get_by_text("View full message").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible(timeout=VISIBLE)
        # Titled with the step that logged it: a bundle's.
        expect(dialog).to_contain_text("move_files_bundle", timeout=VISIBLE)
        expect_metadata(dialog, "partition", moved_project.partition_key)
        for key in OBSERVED_KEYS:
            expect(metadata_row(dialog, key).first).to_be_in_viewport(timeout=VISIBLE)
        expect_metadata(dialog, "misplaced_bytes", "0")
        expect_metadata(dialog, "moved_bytes", str(moved_project.moved_bytes))
        expect_metadata(dialog, "percent_done", "100")
    # What the log holds: an observation of the partition per bundle (and the plan's starting point);
    # the page renders only the rows in view.
    assert moved_project.observations >= moved_project.bundles > 1


def test_the_asset_plots_the_progress_of_the_move_over_time(
    page: Page, webserver: str, moved_project: MovedProject, screenshots: Path
) -> None:
    """`relocation`'s overview, Metadata, Plots, Events: the observations' numbers over time, the
    way a person watches a move go down to zero misplaced bytes."""
    with showing(page, screenshots, "relocation-plots-events"):
        open_page(page, webserver, "/assets/relocation")
        expect(visible_text(page, "Latest materialization")).to_be_visible(timeout=VISIBLE)
        page.get_by_role("button", name="Plots").click()
        # Partitions plots one point per partition; Events, every materialization and observation.
        page.get_by_role("button", name="Events").click()
        # One chart per key, in the order of the keys' names: misplaced_bytes comes first of ours.
        expect(visible_text(page, "misplaced_bytes")).to_be_visible(timeout=VISIBLE)
        scroll_to_top(visible_text(page, "misplaced_bytes"))
        for key in OBSERVED_KEYS:
            expect(visible_text(page, key)).to_be_in_viewport(timeout=VISIBLE)
        expect(page.locator("canvas").first).to_be_visible(timeout=VISIBLE)
