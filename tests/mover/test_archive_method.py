"""Pure: which archive method a bucket's state allows (mover/archive_method.py, buckets.py)."""

from __future__ import annotations

from typing import Any

import pytest

from costalloc_pipeline.audit.checks import lifecycle_problems
from costalloc_pipeline.buckets import (
    ARCHIVE_RULE_ID,
    NONCURRENT_RULE_ID,
    keeps_noncurrent_versions,
    lifecycle_configuration,
)
from costalloc_pipeline.config import Settings
from costalloc_pipeline.mover.archive_method import ArchiveMethod, choose

RETENTION = 365


def _installed(days: int = RETENTION) -> list[Any]:
    return list(lifecycle_configuration(Settings(archive_retention_days=days), versioned=True)["Rules"])


def _noncurrent_expiry(rule_id: str, days: int, **extra: Any) -> dict[str, Any]:
    return {
        "ID": rule_id,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days},
        **extra,
    }


def test_a_versioned_bucket_with_costalloc_s_rules_archives_by_delete() -> None:
    assert choose("auto", "Enabled", _installed(), RETENTION) is ArchiveMethod.DELETE


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_a_bucket_whose_versioning_is_not_enabled_archives_by_copy(versioning: str | None) -> None:
    # A DeleteObject on an unversioned or suspended bucket may remove the bytes for good.
    assert choose("auto", versioning, _installed(), RETENTION) is ArchiveMethod.COPY


def test_copy_mode_copies_even_where_delete_would_do() -> None:
    assert choose("copy", "Enabled", _installed(), RETENTION) is ArchiveMethod.COPY


def test_without_costalloc_s_noncurrent_rule_archives_are_copies() -> None:
    # Noncurrent versions would stay STANDARD for ever: not the archive the settings ask for.
    rules = [rule for rule in _installed() if rule["ID"] != NONCURRENT_RULE_ID]
    assert not keeps_noncurrent_versions(rules, RETENTION)
    assert choose("auto", "Enabled", rules, RETENTION) is ArchiveMethod.COPY


def test_a_rule_that_expires_noncurrent_versions_early_forbids_delete_and_fails_the_audit() -> None:
    rules = [*_installed(), _noncurrent_expiry("operators-cleanup", 30)]
    assert choose("auto", "Enabled", rules, RETENTION) is ArchiveMethod.COPY
    assert lifecycle_problems(rules, RETENTION) == ["operators-cleanup"]
    # costalloc's own rule with a shorter retention than the settings' is as unsafe.
    assert choose("auto", "Enabled", _installed(days=30), RETENTION) is ArchiveMethod.COPY
    assert set(lifecycle_problems(_installed(days=30), RETENTION)) == {NONCURRENT_RULE_ID, ARCHIVE_RULE_ID}


def test_longer_or_disabled_noncurrent_rules_are_harmless() -> None:
    rules = [
        *_installed(),
        _noncurrent_expiry("keep-longer", 2 * RETENTION),
        _noncurrent_expiry("switched-off", 1, Status="Disabled"),
    ]
    assert choose("auto", "Enabled", rules, RETENTION) is ArchiveMethod.DELETE
    assert lifecycle_problems(rules, RETENTION) == []


def test_costalloc_s_rule_narrowed_to_a_prefix_does_not_count() -> None:
    narrowed = [
        {**rule, "Filter": {"Prefix": "1/"}} if rule["ID"] == NONCURRENT_RULE_ID else rule for rule in _installed()
    ]
    assert choose("auto", "Enabled", narrowed, RETENTION) is ArchiveMethod.COPY
