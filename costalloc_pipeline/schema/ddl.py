"""What the schema needs beyond portable SQLAlchemy types, and migration steps that can be re-run.

MySQL and MariaDB commit every DDL statement on its own, so a migration that fails halfway leaves
its first tables behind, and Alembic has not stamped the revision. The steps below create only
what is missing, so running the same migration again finishes the job (on PostgreSQL and SQLite
the migration is one transaction and they behave exactly like Alembic's own operations).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic import op
from sqlalchemy import BigInteger, Column, Connection, DateTime, Integer, inspect
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

MYSQL_FAMILY = ("mysql", "mariadb")

# Microseconds on MySQL too (its DATETIME keeps whole seconds unless told): created_on and the
# replica's watermark compare timestamps that are microseconds apart.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), *MYSQL_FAMILY)

# SQLite autoincrements only an INTEGER primary key.
SerialId = BigInteger().with_variant(Integer, "sqlite")

# An InnoDB index holds at most 3,072 bytes; with utf8mb4 (4 bytes a character) the bucket name
# (100) and the key (700) need 3,200, so MySQL indexes the key's first 600 characters. A lookup
# by bucket and key still uses the index and compares the full key on the rows it finds.
MYSQL_KEY_PREFIX = 600


def is_mysql(dialect: Dialect) -> bool:
    return dialect.name in MYSQL_FAMILY


def _binary_collation(dialect: Dialect) -> str:
    # S3 keys, bucket names and etags are case- and space-sensitive: 'a.txt', 'A.txt' and 'a.txt '
    # are three objects. The servers' default collations fold case and ignore trailing spaces, so a
    # lookup by key could find another object. Each server names its exact (NO PAD, binary)
    # collation differently.
    return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"


def table_options(dialect: Dialect) -> dict[str, Any]:
    """Keyword arguments of a CREATE TABLE: utf8mb4 with exact comparison on MySQL, none elsewhere."""
    if not is_mysql(dialect):
        return {}
    return {"mysql_charset": "utf8mb4", "mysql_collate": _binary_collation(dialect), "mysql_engine": "InnoDB"}


def _bind() -> Connection:
    return op.get_bind()


def create_table(name: str, *columns: Any) -> None:
    bind = _bind()
    if not inspect(bind).has_table(name):
        op.create_table(name, *columns, **table_options(bind.dialect))


def create_index(name: str, table: str, columns: Sequence[str], **dialect_options: Any) -> None:
    if name not in {index["name"] for index in inspect(_bind()).get_indexes(table)}:
        op.create_index(name, table, list(columns), **dialect_options)


def add_column(table: str, column: Column[Any]) -> None:
    if column.name not in {found["name"] for found in inspect(_bind()).get_columns(table)}:
        with op.batch_alter_table(table) as batch:
            batch.add_column(column)
