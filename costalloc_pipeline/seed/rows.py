"""The single rows of a plan, built from its deterministic random streams and its next free ids.

`PlanRowBuilder` holds the state of one plan; `RepositoryPlan` (plan.py) walks the repository on
top of it and decides which rows to build.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from costalloc_pipeline.schema.repository import FileStatus, MetadataType, NodeType, node, node_revision
from costalloc_pipeline.seed.model import PlannedObject, PlannedRow, PlanTally, PlanTargets
from costalloc_pipeline.seed.spec import SeedSpec, special_slots

# Synapse user ids that "created" the synthetic data; they are not principals of this service.
SYNTHETIC_USERS = (3350001, 3350002, 3350003, 3350004, 3350005)
EXTERNAL_URL_ENDPOINT = "https://data.example.org"


def uuid4_text(rng: random.Random) -> str:
    """A version 4 UUID from `rng`, a few times faster than uuid.UUID for millions of rows."""
    digits = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


class EvenShare:
    """Picks floor(n * share) of n candidates, evenly spread: exact counts, even in a tiny repository."""

    def __init__(self, share: float) -> None:
        self._share = share
        self._seen = 0

    def pick(self) -> bool:
        self._seen += 1
        return int(self._seen * self._share) > int((self._seen - 1) * self._share)


class PlanRowBuilder:
    """The state of one plan (tally, random streams, next free ids) and the builders of its rows."""

    def __init__(self, spec: SeedSpec, targets: PlanTargets) -> None:
        self.spec = spec
        self.targets = targets
        self.tally = PlanTally()
        self._rng = random.Random(spec.random_seed)
        # Keys also depend on where the repository starts, so a second seed never reuses a key.
        self._key_rng = random.Random(f"{spec.random_seed}:{targets.first_entity_id}:{targets.first_handle_id}")
        # Etags stay unpredictable (not from the seed): they tell one row version from another.
        self._etag_rng = random.Random()
        self._slots = special_slots(spec)
        self._externals = EvenShare(spec.external_share)
        self._previews = EvenShare(spec.preview_share)
        self._next_entity_id = targets.first_entity_id
        self._next_handle_id = targets.first_handle_id

    # -- handles ----------------------------------------------------------------------------

    def _s3_handle(
        self,
        handle_id: int,
        name: str,
        content_type: str,
        bucket: str,
        storage_location_id: int,
        is_preview: bool = False,
    ) -> tuple[dict[str, Any], PlannedObject]:
        created_by, body, md5_hex = self._content()
        key = f"{created_by}/{self._uuid()}/{name}"
        row = self._handle_row(
            handle_id,
            created_by,
            MetadataType.S3,
            name,
            content_type,
            len(body),
            md5_hex,
            bucket=bucket,
            key=key,
            storage_location_id=storage_location_id,
            is_preview=is_preview,
        )
        return row, PlannedObject(bucket, key, body, md5_hex)

    def _external_url_handle(self, handle_id: int, name: str, content_type: str) -> dict[str, Any]:
        # Synapse lets users declare size and MD5 of external files; ours are those of real bytes.
        created_by, body, md5_hex = self._content()
        return self._handle_row(
            handle_id,
            created_by,
            MetadataType.EXTERNAL,
            name,
            content_type,
            len(body),
            md5_hex,
            key=f"{EXTERNAL_URL_ENDPOINT}/{self._uuid()}/{name}",
            endpoint=EXTERNAL_URL_ENDPOINT,
        )

    def _twin_handle(self, original: dict[str, Any]) -> dict[str, Any]:
        """A second handle on the original's bucket and key, as a handle copy in Synapse would be."""
        self.tally.handles += 1
        twin = dict(original)
        twin.update(
            id=self._take_handle_id(),
            etag=uuid4_text(self._etag_rng),
            created_by=self._rng.choice(SYNTHETIC_USERS),
            preview_id=None,
        )
        return twin

    def _content(self) -> tuple[int, bytes, str]:
        rng = self._rng
        created_by = rng.choice(SYNTHETIC_USERS)
        body = rng.randbytes(rng.randint(self.spec.min_size, self.spec.max_size))
        return created_by, body, hashlib.md5(body).hexdigest()

    def _uuid(self) -> str:
        return uuid4_text(self._key_rng)

    def _handle_row(
        self,
        handle_id: int,
        created_by: int,
        metadata_type: MetadataType,
        name: str,
        content_type: str,
        content_size: int,
        content_md5: str,
        *,
        key: str,
        bucket: str | None = None,
        storage_location_id: int | None = None,
        endpoint: str | None = None,
        is_preview: bool = False,
    ) -> dict[str, Any]:
        self.tally.handles += 1
        now = self.targets.now
        return {
            "id": handle_id,
            "etag": uuid4_text(self._etag_rng),
            "preview_id": None,
            "created_on": now,
            "created_by": created_by,
            "updated_on": now,
            "metadata_type": metadata_type.value,
            "content_type": content_type,
            "content_size": content_size,
            "content_md5": content_md5,
            "bucket_name": bucket,
            "name": name,
            "key": key,
            "storage_location_id": storage_location_id,
            "endpoint": endpoint,
            "is_preview": is_preview,
            "status": FileStatus.AVAILABLE.value,
        }

    # -- rows -------------------------------------------------------------------------------

    def _node(
        self,
        entity_id: int,
        name: str,
        node_type: NodeType,
        parent_id: int | None,
        project_id: int,
        current_version: int | None,
    ) -> PlannedRow:
        now = self.targets.now
        return PlannedRow(
            node,
            {
                "id": entity_id,
                "name": name,
                "node_type": node_type.value,
                "parent_id": parent_id,
                "project_id": project_id,
                "current_version": current_version,
                "etag": uuid4_text(self._etag_rng),
                "created_on": now,
                "created_by": self._rng.choice(SYNTHETIC_USERS),
                "modified_on": now,
            },
        )

    def _revision(self, entity_id: int, number: int, handle_id: int) -> PlannedRow:
        self.tally.revisions += 1
        return PlannedRow(
            node_revision,
            {
                "owner_node_id": entity_id,
                "number": number,
                "file_handle_id": handle_id,
                "modified_on": self.targets.now,
            },
        )

    def _take_entity_id(self) -> int:
        entity_id = self._next_entity_id
        self._next_entity_id += 1
        return entity_id

    def _take_handle_id(self) -> int:
        handle_id = self._next_handle_id
        self._next_handle_id += 1
        return handle_id
