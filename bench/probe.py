"""One planning step in a process of its own, so that its peak memory is its own.

`python -m bench.probe refresh URL`, `python -m bench.probe out-of-place URL PROJECT_ID` or
`python -m bench.probe check URL PROJECT_ID` prints one JSON object: seconds, rows, the RSS after
imports and the peak RSS (VmHWM) of this process.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from costalloc_pipeline.db import engine_for
from costalloc_pipeline.placement.misplaced import find_out_of_place
from costalloc_pipeline.placement.progress import project_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.replica.refresh import (
    refresh_entity_replication,
    refresh_file_replication,
)


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from the kernel's own accounting."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def refresh(url: str) -> dict[str, Any]:
    engine = engine_for(url)
    started = time.perf_counter()
    entities = refresh_entity_replication(engine, engine)
    handles = refresh_file_replication(engine, engine)
    return {
        "seconds": time.perf_counter() - started,
        "rows_read": entities.rows_read + handles.rows_read,
        "rows_upserted": entities.rows_upserted + handles.rows_upserted,
        "replica_rows": entities.total_rows + handles.total_rows,
        "full_refresh": entities.full_refresh or handles.full_refresh,
        # Whether each table's planner statistics were refreshed after it (replica/statistics.py).
        "analyzed": {result.table: result.analyzed for result in (entities, handles)},
    }


def out_of_place(url: str, project_id: int) -> dict[str, Any]:
    """The files_out_of_place asset's work: the project's misplaced handles, conflicts set apart."""
    engine = engine_for(url)
    started = time.perf_counter()
    found = find_out_of_place(engine, project_id, load_placement(engine))
    return {"seconds": time.perf_counter() - started, "rows": len(found.to_move), "conflicts": len(found.conflicts)}


def check(url: str, project_id: int) -> dict[str, Any]:
    """The no_misplaced_files check's work: the project's progress, from the live repository."""
    engine = engine_for(url)
    started = time.perf_counter()
    with engine.connect() as conn:
        progress = project_progress(conn, project_id, load_placement(conn))
    return {
        "seconds": time.perf_counter() - started,
        "rows": progress.misplaced_files + progress.placed_files + progress.conflict_files,
        "misplaced_files": progress.misplaced_files,
        "conflict_files": progress.conflict_files,
    }


STEPS = {"out-of-place": out_of_place, "check": check}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("refresh").add_argument("url")
    for name in STEPS:
        step = steps.add_parser(name)
        step.add_argument("url")
        step.add_argument("project_id", type=int)
    args = parser.parse_args()
    baseline = memory_mb("VmRSS")
    figures = refresh(args.url) if args.step == "refresh" else STEPS[args.step](args.url, args.project_id)
    print(json.dumps({**figures, "baseline_rss_mb": baseline, "peak_rss_mb": memory_mb("VmHWM")}))


if __name__ == "__main__":
    main()
