"""Planning (pure): the walk over projects, folders and files that yields the repository.

Which handles each file entity gets, and which it lends or borrows in the special cases (where
those sit: `special_slots` in spec.py); the single rows come from `PlanRowBuilder` (rows.py).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from costalloc_pipeline.schema.repository import DEFAULT_STORAGE_LOCATION_ID, NodeType, files
from costalloc_pipeline.seed.model import PlannedItem, PlannedRow
from costalloc_pipeline.seed.rows import PlanRowBuilder
from costalloc_pipeline.seed.spec import Slot

FILE_KINDS = (
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    ("txt", "text/plain"),
    ("json", "application/json"),
    ("bam", "application/octet-stream"),
)
PREVIEW_NAME = "preview.png"
PREVIEW_CONTENT_TYPE = "image/png"


class RepositoryPlan(PlanRowBuilder):
    """Lazily yields the rows and objects of one synthetic repository.

    Everything but etags and timestamps follows from the spec's random seed and the first ids;
    seeding twice with one seed gives the same contents again at other ids and keys.
    """

    def items(self) -> Iterator[PlannedItem]:
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]] = {}
        for _ in range(self.spec.projects):
            lenders: dict[tuple[Slot, int], dict[str, Any]] = {}
            yield from self._project(previous_lenders, lenders)
            previous_lenders = lenders

    # -- entities ---------------------------------------------------------------------------

    def _project(
        self,
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]],
        lenders: dict[tuple[Slot, int], dict[str, Any]],
    ) -> Iterator[PlannedItem]:
        project_id = self._take_entity_id()
        self.tally.project_ids.append(project_id)
        yield self._node(project_id, f"Synthetic project {project_id}", NodeType.PROJECT, None, project_id, None)
        index = 0
        for folder_number in range(self.spec.folders_per_project):
            folder_id = self._take_entity_id()
            self.tally.folders += 1
            yield self._node(folder_id, f"folder_{folder_number}", NodeType.FOLDER, project_id, project_id, None)
            for _ in range(self.spec.files_per_folder):
                yield from self._file_entity(project_id, folder_id, self._slots.get(index), previous_lenders, lenders)
                index += 1

    def _file_entity(
        self,
        project_id: int,
        folder_id: int,
        slot: tuple[Slot, int] | None,
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]],
        lenders: dict[tuple[Slot, int], dict[str, Any]],
    ) -> Iterator[PlannedItem]:
        entity_id = self._take_entity_id()
        self.tally.file_entities += 1
        extension, content_type = self._rng.choice(FILE_KINDS)
        name = f"file_{entity_id}.{extension}"
        borrowed = self._borrowed_handle(slot, previous_lenders, lenders)
        versions = self.spec.versions_per_file + int(borrowed is not None)
        yield self._node(entity_id, name, NodeType.FILE, folder_id, project_id, versions)
        # A lender's first version must be in repository-managed storage: that is what gets moved.
        lends = slot is not None and slot[0] in (Slot.LEND_WITHIN, Slot.LEND_ACROSS, Slot.LEND_SAME_KEY)
        for number in range(1, self.spec.versions_per_file + 1):
            handle = yield from self._main_handle(name, content_type, managed=lends and number == 1)
            # `slot is not None` is implied by `lends` (and below by `borrowed`); restated for the type.
            if slot is not None and lends and number == 1:
                lenders[slot] = handle
            yield self._revision(entity_id, number, handle["id"])
        if slot is not None and borrowed is not None:
            yield from self._borrow(slot, borrowed, entity_id, versions)

    def _borrowed_handle(
        self,
        slot: tuple[Slot, int] | None,
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]],
        lenders: dict[tuple[Slot, int], dict[str, Any]],
    ) -> dict[str, Any] | None:
        if slot is None:
            return None
        kind, case = slot
        if kind is Slot.BORROW_WITHIN:
            return lenders[(Slot.LEND_WITHIN, case)]
        if kind is Slot.BORROW_ACROSS:
            # The first project has no previous one: its across borrowers are plain files.
            return previous_lenders.get((Slot.LEND_ACROSS, case))
        if kind is Slot.TWIN:
            reach_back = case % 2 == 1 and previous_lenders
            return (previous_lenders if reach_back else lenders)[(Slot.LEND_SAME_KEY, case)]
        return None

    def _borrow(
        self, slot: tuple[Slot, int], lent: dict[str, Any], entity_id: int, number: int
    ) -> Iterator[PlannedItem]:
        kind = slot[0]
        if kind is Slot.TWIN:
            twin = self._twin_handle(lent)
            yield PlannedRow(files, twin)
            self.tally.same_key_pairs.append((lent["id"], twin["id"]))
            yield self._revision(entity_id, number, twin["id"])
            return
        if kind is Slot.BORROW_WITHIN:
            self.tally.shared_within_project.append(lent["id"])
        else:
            self.tally.shared_across_projects.append(lent["id"])
        yield self._revision(entity_id, number, lent["id"])

    # -- handles ----------------------------------------------------------------------------

    def _main_handle(self, name: str, content_type: str, managed: bool) -> Generator[PlannedItem, None, dict[str, Any]]:
        """Yields the handle (and its preview) with their objects; returns the main handle row."""
        handle_id = self._take_handle_id()
        if not managed and self._externals.pick():
            self.tally.external_handle_ids.append(handle_id)
            # Alternating, S3 first: even one external handle puts an object in the external bucket.
            if len(self.tally.external_handle_ids) % 2 == 0:
                row = self._external_url_handle(handle_id, name, content_type)
            else:
                row, obj = self._s3_handle(
                    handle_id,
                    name,
                    content_type,
                    self.targets.external_bucket,
                    self.targets.external_storage_location_id,
                )
                yield obj
            yield PlannedRow(files, row)
            return row
        row, obj = self._s3_handle(
            handle_id, name, content_type, self.targets.default_bucket, DEFAULT_STORAGE_LOCATION_ID
        )
        yield obj
        if self._previews.pick():
            preview_id = self._take_handle_id()
            preview, preview_obj = self._s3_handle(
                preview_id,
                PREVIEW_NAME,
                PREVIEW_CONTENT_TYPE,
                self.targets.default_bucket,
                DEFAULT_STORAGE_LOCATION_ID,
                is_preview=True,
            )
            self.tally.preview_handle_ids.append(preview_id)
            yield preview_obj
            yield PlannedRow(files, preview)
            row["preview_id"] = preview_id
        yield PlannedRow(files, row)
        return row
