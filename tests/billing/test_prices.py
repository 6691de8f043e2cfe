"""The price table: documented defaults, a file that overrides them key by key, and bad files refused."""

from __future__ import annotations

import json

import pytest

from costalloc_pipeline.billing.prices import GB, PriceTable, load_price_table
from costalloc_pipeline.errors import ConfigError


def test_defaults_are_the_us_east_1_list_prices() -> None:
    table = load_price_table(None)
    assert table.storage_month("STANDARD", 1000 * GB) == pytest.approx(23.0)
    assert table.storage_month("GLACIER", 1000 * GB) == pytest.approx(3.6)
    assert table.writes("STANDARD", 1000) == pytest.approx(0.005)
    assert table.writes("GLACIER", 1000) == pytest.approx(0.03)
    # An archive deleted after 10 days is still billed for GLACIER's 90.
    assert table.kept("GLACIER", 1000 * GB, 10) == pytest.approx(3.6 * 3)
    assert table.kept("GLACIER", 1000 * GB, 365) == pytest.approx(3.6 * 365 / 30)


def test_a_file_replaces_only_what_it_names(tmp_path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"storage_gb_month": {"STANDARD": 0.021}, "read_per_1000": 0.0005}))
    table = load_price_table(str(path))
    assert table.storage_gb_month["STANDARD"] == 0.021
    assert table.storage_gb_month["GLACIER"] == PriceTable().storage_gb_month["GLACIER"]
    assert table.read_per_1000 == 0.0005


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "cannot read"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"storage_per_gb": {}}', "unknown keys ['storage_per_gb']"),
        ('{"storage_gb_month": {"STANDARD": -1}}', "storage_gb_month.STANDARD must be a number >= 0"),
        ('{"read_per_1000": "cheap"}', "read_per_1000 must be a number >= 0"),
        ('{"minimum_days": 3}', "minimum_days must be an object of prices"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_the_variable(tmp_path, content: str, reason: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="COSTALLOC_PRICE_TABLE") as error:
        load_price_table(str(path))
    assert reason in error.value.reason


def test_a_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_price_table(str(tmp_path / "absent.json"))
