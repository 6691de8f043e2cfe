"""The seed specification: the shape of one synthetic repository, its validation, and where
its special cases sit in each project."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from costalloc_pipeline.errors import BadRequest


@dataclass(frozen=True)
class SeedSpec:
    """The shape of one synthetic repository. Counts of special cases are per project."""

    projects: int = 3
    folders_per_project: int = 2
    files_per_folder: int = 20
    versions_per_file: int = 2
    # Share of the main handles in the default bucket that get a preview.
    preview_share: float = 0.25
    shared_within_project: int = 1
    shared_across_projects: int = 1
    same_key_pairs: int = 2
    # Share of the main handles that live outside repository-managed storage.
    external_share: float = 0.1
    min_size: int = 64
    max_size: int = 4096
    upload_objects: bool = True
    upload_concurrency: int = 16
    random_seed: int = 42
    # Entity and handle ids start at id_offset + 1; None starts them above the current maximum.
    id_offset: int | None = None

    @property
    def files_per_project(self) -> int:
        return self.folders_per_project * self.files_per_folder

    @property
    def special_files_per_project(self) -> int:
        # Each special case takes one lending and one borrowing file entity.
        return 2 * (self.shared_within_project + self.shared_across_projects + self.same_key_pairs)

    def validate(self) -> None:
        counts = {
            "projects": self.projects,
            "folders per project": self.folders_per_project,
            "files per folder": self.files_per_folder,
            "versions per file": self.versions_per_file,
            "shared handles within a project": self.shared_within_project,
            "shared handles across projects": self.shared_across_projects,
            "same-key pairs": self.same_key_pairs,
            "minimum object size": self.min_size,
            "maximum object size": self.max_size,
        }
        for label, value in counts.items():
            if value < 0:
                raise BadRequest(f"{label} must not be negative, got {value}")
        if self.versions_per_file < 1:
            raise BadRequest("versions per file must be at least 1")
        if self.upload_concurrency < 1:
            raise BadRequest(f"upload concurrency must be at least 1, got {self.upload_concurrency}")
        for label, share in (("preview share", self.preview_share), ("external share", self.external_share)):
            if not 0.0 <= share <= 1.0:
                raise BadRequest(f"{label} must be between 0 and 1, got {share}")
        if self.min_size > self.max_size:
            raise BadRequest(f"minimum object size {self.min_size} is above maximum {self.max_size}")
        if self.special_files_per_project > self.files_per_project:
            raise BadRequest(
                f"the shared and same-key cases need {self.special_files_per_project} files per project "
                f"(two per case), the spec has {self.files_per_project}: add files or lower the case counts"
            )
        if self.id_offset is not None and self.id_offset < 0:
            raise BadRequest(f"id offset must not be negative, got {self.id_offset}")


class Slot(enum.Enum):
    """Role of a file entity in the special cases of its project."""

    LEND_WITHIN = "lend_within"
    LEND_ACROSS = "lend_across"
    LEND_SAME_KEY = "lend_same_key"
    BORROW_WITHIN = "borrow_within"
    BORROW_ACROSS = "borrow_across"
    TWIN = "twin"


def special_slots(spec: SeedSpec) -> dict[int, tuple[Slot, int]]:
    """File index in the project -> (slot, case number).

    Lenders come first so a borrower of the same project always finds its lender already planned;
    borrowers take the last files.
    """
    last = spec.files_per_project - 1
    slots: dict[int, tuple[Slot, int]] = {}
    cases = (
        (Slot.LEND_WITHIN, Slot.BORROW_WITHIN, spec.shared_within_project),
        (Slot.LEND_ACROSS, Slot.BORROW_ACROSS, spec.shared_across_projects),
        (Slot.LEND_SAME_KEY, Slot.TWIN, spec.same_key_pairs),
    )
    taken = 0
    for lend, borrow, count in cases:
        for case in range(count):
            slots[taken + case] = (lend, case)
            slots[last - taken - case] = (borrow, case)
        taken += count
    return slots
