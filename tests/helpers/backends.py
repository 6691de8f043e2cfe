"""Which database backends the tests run on."""

from __future__ import annotations

import os

import pytest

# PostgreSQL and MariaDB tests fail (never skip) when the server is unreachable, unless explicitly
# turned off.
POSTGRES_ENABLED = os.environ.get("COSTALLOC_TEST_POSTGRES", "on") != "off"
MARIADB_ENABLED = os.environ.get("COSTALLOC_TEST_MARIADB", "on") != "off"
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_ENABLED else []) + (["mariadb"] if MARIADB_ENABLED else [])

# For behaviour only PostgreSQL has (lost backends, other drivers): the test runs on it alone.
postgresql_only = pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_ENABLED, reason="COSTALLOC_TEST_POSTGRES=off"))],
    indirect=True,
)

# For what only MySQL and MariaDB do (DDL outside transactions, collations, no RETURNING on UPDATE).
mariadb_only = pytest.mark.parametrize(
    "database_url",
    [pytest.param("mariadb", marks=pytest.mark.skipif(not MARIADB_ENABLED, reason="COSTALLOC_TEST_MARIADB=off"))],
    indirect=True,
)
