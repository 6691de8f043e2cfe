"""The price table: S3's list prices for us-east-1 by default, overridable from a JSON file.

`COSTALLOC_PRICE_TABLE` names a JSON object whose keys are the fields of `PriceTable`; each given
value replaces the default (a mapping is merged key by key, so one storage class can be changed
alone). Anything else in the file is a ConfigError naming the variable: a typo must not silently
leave a default in place. Figures are dollars; sizes are GB of 10^9 bytes, as AWS bills them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from costalloc_pipeline.errors import ConfigError

PRICE_TABLE_VARIABLE = "COSTALLOC_PRICE_TABLE"
GB = 10**9
# AWS prorates storage by the hour over the month; a month of 30 days is what its calculator uses.
DAYS_PER_MONTH = 30


def _defaults(**values: float) -> Any:
    return field(default_factory=lambda: dict(values))


@dataclass(frozen=True)
class PriceTable:
    """List prices of S3 in us-east-1 (S3 pricing page, 2026), the first tier of each."""

    # Storage, $ per GB-month, by storage class.
    storage_gb_month: Mapping[str, float] = _defaults(
        STANDARD=0.023,
        INTELLIGENT_TIERING=0.023,
        STANDARD_IA=0.0125,
        ONEZONE_IA=0.01,
        GLACIER_IR=0.004,
        GLACIER=0.0036,
        DEEP_ARCHIVE=0.00099,
    )
    # PUT, COPY, POST (UploadPartCopy, CreateMultipartUpload and CompleteMultipartUpload too),
    # $ per 1,000 requests, by the storage class of the object written.
    write_per_1000: Mapping[str, float] = _defaults(
        STANDARD=0.005,
        INTELLIGENT_TIERING=0.005,
        STANDARD_IA=0.01,
        ONEZONE_IA=0.01,
        GLACIER_IR=0.02,
        GLACIER=0.03,
        DEEP_ARCHIVE=0.05,
    )
    # GET and HEAD, $ per 1,000 requests.
    read_per_1000: float = 0.0004
    # Days an object of the class is billed for at least, even when deleted sooner.
    minimum_days: Mapping[str, int] = field(
        default_factory=lambda: {
            "STANDARD_IA": 30,
            "ONEZONE_IA": 30,
            "GLACIER_IR": 90,
            "GLACIER": 90,
            "DEEP_ARCHIVE": 180,
        }
    )
    # Restores, $ per GB retrieved and $ per 1,000 requests, by "<class>:<tier>".
    restore_gb: Mapping[str, float] = _defaults(
        **{
            "GLACIER:Expedited": 0.03,
            "GLACIER:Standard": 0.01,
            "GLACIER:Bulk": 0.0,
            "DEEP_ARCHIVE:Standard": 0.02,
            "DEEP_ARCHIVE:Bulk": 0.0025,
        }
    )
    restore_per_1000: Mapping[str, float] = _defaults(
        **{
            "GLACIER:Expedited": 10.0,
            "GLACIER:Standard": 0.05,
            "GLACIER:Bulk": 0.0,
            "DEEP_ARCHIVE:Standard": 0.10,
            "DEEP_ARCHIVE:Bulk": 0.025,
        }
    )

    def storage_month(self, storage_class: str, size: int) -> float:
        """A month of `size` bytes in the class (an unknown class costs as STANDARD)."""
        rate = self.storage_gb_month.get(storage_class, self.storage_gb_month["STANDARD"])
        return rate * size / GB

    def writes(self, storage_class: str, requests: int) -> float:
        rate = self.write_per_1000.get(storage_class, self.write_per_1000["STANDARD"])
        return rate * requests / 1000

    def reads(self, requests: int) -> float:
        return self.read_per_1000 * requests / 1000

    def kept(self, storage_class: str, size: int, days: int) -> float:
        """Keeping `size` bytes in the class for `days`, billed for at least its minimum duration."""
        billed_days = max(days, self.minimum_days.get(storage_class, 0))
        return self.storage_month(storage_class, size) * billed_days / DAYS_PER_MONTH


def _checked(name: str, value: object, default: object) -> Any:
    """`value` for the field `name` if it has the default's shape, else a ConfigError."""
    where = f"{PRICE_TABLE_VARIABLE}: {name}"

    def number(item: object, what: str) -> float:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item) or item < 0:
            raise ConfigError(f"{where}{what} must be a number >= 0, got {item!r}")
        return item

    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be an object of prices, got {value!r}")
        return {**default, **{str(key): number(item, f".{key}") for key, item in value.items()}}
    return number(value, "")


def load_price_table(path: str | None) -> PriceTable:
    """The defaults, with the file's values in place of theirs (no file: the defaults)."""
    table = PriceTable()
    if not path:
        return table
    try:
        given = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{PRICE_TABLE_VARIABLE}: cannot read {path!r} as JSON ({error})") from None
    if not isinstance(given, dict):
        raise ConfigError(f"{PRICE_TABLE_VARIABLE}: {path!r} must hold a JSON object")
    known = {f.name for f in fields(PriceTable)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"{PRICE_TABLE_VARIABLE}: unknown keys {unknown}; known: {sorted(known)}")
    changes: dict[str, Any] = {name: _checked(name, value, getattr(table, name)) for name, value in given.items()}
    return replace(table, **changes)
