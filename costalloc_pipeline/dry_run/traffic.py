"""Pure: the S3 requests the mover sends to move a bundle of handles, counted from its protocol.

Counted as mover/bundle.py, mover/copier.py and mover/archive.py send them, for a target key that is
free (nothing to reuse, nothing in the way):
- looking at the objects: ListObjectsV2 pages over each source bucket's keys and the target's keys
  (mover/objects.py `stat_objects`): one page per thousand keys where the keys are dense, one per key
  where they are sparse, so both bounds are given;
- up to the multipart threshold, one CopyObject per handle, plus a HEAD to verify it when no MD5 is
  known (neither the handle's nor a single-part source's ETag);
- above it, a HEAD of the source, CreateMultipartUpload, one UploadPartCopy per part,
  CompleteMultipartUpload, then a HEAD and, when an MD5 is known, a GET reading the copy back;
- the archive of each source object no AVAILABLE handle still names, by the method its bucket allows
  (mover/archive_method.py): a CopyObject onto itself in the archive class, or the multipart path
  (HEAD, Create, parts, Complete) above the threshold; or in a versioned bucket, for each batch of
  repointed handles (mover/pipeline.py), a look at the batch's keys (ListObjectsV2) and one
  DeleteObjects, after which the bucket's rule moves each noncurrent version to the archive class
  (a lifecycle transition, billed as a write in that class). A run reads a bucket's versioning and
  lifecycle once a minute: counted once a bundle (two requests a source bucket), an upper bound.
Retries, reuses and the rare look-up of keys shared by two source buckets are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from costalloc_pipeline.mover.archive_method import ArchiveMethod
from costalloc_pipeline.mover.context import REPOINT_BATCH

# Keys one ListObjectsV2 page answers at most.
LIST_PAGE = 1000


@dataclass(frozen=True)
class Move:
    """A handle the mover would copy, and its source object as the plan knows it."""

    file_handle_id: int
    bucket: str
    key: str
    size: int
    storage_class: str
    # Whether the copy is verified by its ETag alone: the handle records an MD5, or the source's
    # ETag is one (a single-part object).
    md5_known: bool
    # Whether its source object is archived after the move (no AVAILABLE handle left behind names it).
    archived: bool
    # How: ArchiveMethod's value for the source bucket ("copy" where the plan did not look at S3).
    archive_method: str = ArchiveMethod.COPY.value

    @property
    def source(self) -> tuple[str, str]:
        return self.bucket, self.key


@dataclass(frozen=True)
class CopySizes:
    multipart_threshold: int
    part_size: int

    def multipart(self, size: int) -> bool:
        return size > self.multipart_threshold

    def parts(self, size: int) -> int:
        return math.ceil(size / self.part_size)


@dataclass(frozen=True)
class Requests:
    """Requests by kind, and the bytes they carry. Adds up field by field."""

    list_objects_min: int = 0
    list_objects_max: int = 0
    copy_object: int = 0
    create_multipart_upload: int = 0
    upload_part_copy: int = 0
    complete_multipart_upload: int = 0
    head_object: int = 0
    # Reads of a multipart copy back, to check its MD5.
    get_object: int = 0
    archive_copy_object: int = 0
    archive_create_multipart_upload: int = 0
    archive_upload_part_copy: int = 0
    archive_complete_multipart_upload: int = 0
    archive_head_object: int = 0
    archive_delete_objects: int = 0
    archive_list_objects: int = 0
    # Noncurrent versions the bucket's rule moves to the archive class (not requests costalloc sends).
    archive_transitions: int = 0
    # GetBucketVersioning and GetBucketLifecycleConfiguration before a bundle's archives.
    bucket_state_reads: int = 0
    copied_bytes: int = 0
    read_back_bytes: int = 0
    archived_bytes: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Requests)})

    @property
    def copy_writes(self) -> int:
        """Writes into the target bucket (billed at its STANDARD rate)."""
        return self.copy_object + self.create_multipart_upload + self.upload_part_copy + self.complete_multipart_upload

    @property
    def archive_writes(self) -> int:
        """Writes of archive copies and transitions into the archive class (billed at its rate)."""
        return (
            self.archive_copy_object
            + self.archive_create_multipart_upload
            + self.archive_upload_part_copy
            + self.archive_complete_multipart_upload
            + self.archive_transitions
        )

    @property
    def reads(self) -> int:
        return (
            self.head_object
            + self.get_object
            + self.archive_head_object
            + self.bucket_state_reads
            + self.archive_list_objects
        )

    @property
    def pooled(self) -> int:
        """Requests sent from the bundle's pool of copy threads (all but the listing; deletes are free)."""
        return (
            self.copy_writes + self.archive_writes - self.archive_transitions + self.reads + self.archive_delete_objects
        )

    @property
    def transferred_bytes(self) -> int:
        return self.copied_bytes + self.read_back_bytes + self.archived_bytes


def copy_requests(move: Move, sizes: CopySizes) -> Requests:
    if sizes.multipart(move.size):
        read_back = move.md5_known
        return Requests(
            create_multipart_upload=1,
            upload_part_copy=sizes.parts(move.size),
            complete_multipart_upload=1,
            # The source's HEAD before the upload, the copy's HEAD after it.
            head_object=2,
            get_object=1 if read_back else 0,
            copied_bytes=move.size,
            read_back_bytes=move.size if read_back else 0,
        )
    return Requests(copy_object=1, head_object=0 if move.md5_known else 1, copied_bytes=move.size)


def archive_requests(move: Move, sizes: CopySizes) -> Requests:
    if move.archive_method == ArchiveMethod.DELETE.value:
        # No byte is copied: the version becomes noncurrent where it is (its request is its batch's).
        return Requests(archive_transitions=1)
    if sizes.multipart(move.size):
        return Requests(
            archive_head_object=1,
            archive_create_multipart_upload=1,
            archive_upload_part_copy=sizes.parts(move.size),
            archive_complete_multipart_upload=1,
            archived_bytes=move.size,
        )
    return Requests(archive_copy_object=1, archived_bytes=move.size)


def _pages(keys: int) -> tuple[int, int]:
    return math.ceil(keys / LIST_PAGE), keys


def listing_requests(moves: Sequence[Move]) -> Requests:
    """The look at a bundle's objects: each source bucket's keys, and the target's."""
    keys_by_bucket: dict[str, set[str]] = {}
    for move in moves:
        keys_by_bucket.setdefault(move.bucket, set()).add(move.key)
    counts = [len(keys) for keys in keys_by_bucket.values()] + [len({move.key for move in moves})]
    least = sum(_pages(count)[0] for count in counts if count)
    most = sum(_pages(count)[1] for count in counts)
    return Requests(list_objects_min=least, list_objects_max=most)


def bundle_requests(moves: Sequence[Move], sizes: CopySizes, reads_bucket_state: bool = True) -> Requests:
    """Every request of one bundle: the look, a copy per handle, an archive per source object.
    `reads_bucket_state`: the archive method is read from the buckets (not COSTALLOC_ARCHIVE_MODE=copy)."""
    total = listing_requests(moves) if moves else Requests()
    archived_buckets = {move.bucket for move in moves if move.archived} if reads_bucket_state else set()
    total += Requests(bucket_state_reads=2 * len(archived_buckets))
    archived: set[tuple[str, str]] = set()
    for move in moves:
        total += copy_requests(move, sizes)
        if move.archived and move.source not in archived:
            archived.add(move.source)
            total += archive_requests(move, sizes)
    # The archives by DeleteObjects: a look and one request a repoint batch (and source bucket).
    deleted = sum(1 for move in moves if move.archived and move.archive_method == ArchiveMethod.DELETE.value)
    batches = math.ceil(deleted / REPOINT_BATCH)
    return total + Requests(archive_delete_objects=batches, archive_list_objects=batches)


def longest_transfer(moves: Iterable[Move], sizes: CopySizes) -> int:
    """Bytes of the longest single request: no concurrency shortens it."""
    return max(
        (min(move.size, sizes.part_size) if sizes.multipart(move.size) else move.size for move in moves),
        default=0,
    )
