"""How the database runs the planning queries of a project: EXPLAIN ANALYZE on PostgreSQL, ANALYZE
on MariaDB, in a transaction tuned as the planner's own (placement/session.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Select

from costalloc_pipeline.db import engine_for
from costalloc_pipeline.placement.misplaced import own_handles_query, sharing_query
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.placement.session import tune_for_planning


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _postgresql_plan(conn: Connection, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    [[document]] = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).all()
    root = document[0]["Plan"]
    return {
        "nodes": [
            " on ".join(filter(None, (node["Node Type"], node.get("Index Name") or node.get("Relation Name"))))
            for node in _plan_nodes(root)
        ],
        # Of the whole query: a parallel node's own estimate is per process.
        "rows_estimated": float(root["Plan Rows"]),
        "rows_actual": float(root["Actual Rows"] * root["Actual Loops"]),
        "seconds": document[0]["Execution Time"] / 1000,
    }


def _mariadb_plan(conn: Connection, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    # ANALYZE runs the statement and reports, per table, the rows the optimizer expected and read.
    started = time.perf_counter()
    rows = conn.exec_driver_sql(f"ANALYZE {sql}", params).mappings().all()
    seconds = time.perf_counter() - started
    # Of the first table read: where the query starts (the project's rows of entity_replication).
    first = rows[0]
    return {
        "nodes": [f"{row['type']} on {row['table']} by {row['key']}" for row in rows],
        "rows_estimated": float(first["rows"] or 0),
        "rows_actual": float(first["r_rows"] or 0),
        "seconds": seconds,
    }


def explain_planning(url: str, project_id: int) -> dict[str, dict[str, Any]]:
    """The plans of files_out_of_place's two queries, the project's rows and who else shares them:
    nodes, the rows expected against those found (a bad estimate picks a bad join), seconds."""
    engine = engine_for(url)
    placement = load_placement(engine)
    queries: dict[str, Select[Any] | CompoundSelect[Any]] = {
        "rows": own_handles_query(project_id, placement.target_bucket(project_id), placement.managed_buckets),
        "sharing": sharing_query(project_id),
    }
    plans = {}
    for name, query in queries.items():
        compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
        with engine.connect() as conn:
            tune_for_planning(conn)
            explain = _postgresql_plan if engine.dialect.name == "postgresql" else _mariadb_plan
            plans[name] = explain(conn, str(compiled), compiled.params)
    return plans
