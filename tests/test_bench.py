"""The benchmark runs, once, at a tiny size: every section reports, against real moto and PostgreSQL.

No timing is asserted (this machine's speed is not under test); counts are.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers.backends import MARIADB_ENABLED
from sqlalchemy import create_engine, text

from bench.bulk_rows import VERSIONS, layout
from bench.profiling import KINDS, OTHER_KIND, summarize
from bench.race import (
    COSTALLOC,
    COSTALLOC_COPY,
    COSTALLOC_LANES,
    LANES,
    Heat,
    LaneRun,
    RaceOptions,
    RaceResult,
    lane_order,
)
from bench.relocate import RelocationRun
from bench.report import (
    COPIED_TARGET,
    CPU_TARGET,
    LARGE_TARGET,
    RATIO_LATENCY_MS,
    RATIO_PEERS,
    REQUESTS_TARGETS,
    VERSIONED_RATIO_TARGET,
    BenchReport,
)
from bench.small_run import SMALL_RUN_TARGET
from bench.stats import Spread
from costalloc_pipeline.mover.outcome import BundleResult

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("COSTALLOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_URL = os.environ.get("COSTALLOC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ["postgresql"] + (["mariadb"] if MARIADB_ENABLED else [])
PLANNING_TARGETS = [
    "files_out_of_place rows/s",
    "files_out_of_place peak RSS MB",
    "no_misplaced_files check seconds",
    "incremental refresh seconds",
]
# MariaDB's buffer pool moves by chunks of 128 MB.
BUFFER_POOL_STEP_MB = 128
FILES = 6
ROUNDS = 1
# The fair race's delays; its large-object heat would add as much time again, so it is left out.
DELAYS_MS = (0, 5)


@pytest.mark.skipif(os.environ.get("COSTALLOC_TEST_POSTGRES", "on") == "off", reason="the benchmark needs PostgreSQL")
def test_the_benchmark_runs_at_a_tiny_size_and_reports_every_section(tmp_path):
    # MariaDB's buffer pool is raised by a chunk for the run, then put back.
    pool_before = _buffer_pool_mb() if MARIADB_ENABLED else 0
    command = [
        sys.executable,
        "-m",
        "bench",
        "--json",
        "--files",
        str(FILES),
        "--rounds",
        str(ROUNDS),
        "--cost-requests",
        "50",
        "--latency-ms",
        ",".join(map(str, DELAYS_MS)),
        "--skip-large",
        # Its Celery workers would share the broker's queue with tests/celery running beside it
        # and take that test's tasks; `make bench` runs it.
        "--skip-scale-out",
        "--scale-total",
        "400",
        "--scale-projects",
        "100,20",
        "--scale-backends",
        ",".join(BACKENDS),
        "--mariadb-url",
        MARIADB_URL,
        "--mariadb-buffer-pool-mb",
        str(pool_before + BUFFER_POOL_STEP_MB),
        "--repoint-handles",
        "50",
        "--repoint-baseline",
        "10",
        "--postgres-url",
        POSTGRES_URL,
        "--work-dir",
        str(tmp_path),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout)

    race = report["race"]
    assert race["unavailable"] == {}
    assert [heat["latency_ms"] for heat in race["heats"]] == list(DELAYS_MS)
    assert race["large"] is None
    for heat in race["heats"]:
        assert set(heat["lanes"]) == set(LANES)
        assert set(heat["costalloc_over"]) == set(heat["costalloc_copy_over"]) == set(LANES) - set(COSTALLOC_LANES)
        for lane, figures in heat["lanes"].items():
            assert figures["files_per_second"]["samples"] == ROUNDS
            # Every tool copies each object and removes its source: at least two requests a file,
            # all of them seen by the proxy.
            assert sum(figures["requests"].values()) >= 2 * heat["files"] * ROUNDS, (lane, figures["requests"])
            assert figures["server_cpu_ms_per_file"]["median"] > 0
        # Versioned: one verified copy per file (CopyObject is a PUT) and one DeleteObjects (a POST)
        # for the batch; no HEAD, but a listing of the sources and one of the target keys per bundle
        # (one bundle here), the source bucket's versioning and lifecycle read before its archives,
        # and a look at the archived keys right before their delete.
        assert heat["lanes"][COSTALLOC]["requests"] == {
            "PUT": heat["files"] * ROUNDS,
            "POST": ROUNDS,
            "GET": 5 * ROUNDS,
        }
        # Copy mode: the archive is a second CopyObject, and the bucket's state is not asked.
        assert heat["lanes"][COSTALLOC_COPY]["requests"] == {"PUT": 2 * heat["files"] * ROUNDS, "GET": 2 * ROUNDS}
    small_heats = len(DELAYS_MS) * ROUNDS
    assert race["costalloc_calls"] == {
        COSTALLOC: {
            "CopyObject": FILES * small_heats,
            "DeleteObjects": small_heats,
            "GetBucketLifecycleConfiguration": small_heats,
            "GetBucketVersioning": small_heats,
            "ListObjectsV2": 3 * small_heats,
        },
        COSTALLOC_COPY: {"CopyObject": 2 * FILES * small_heats, "ListObjectsV2": 2 * small_heats},
    }
    assert race["costalloc_moved_files"] == dict.fromkeys(COSTALLOC_LANES, FILES * small_heats)
    assert report["relocate_project_job"]["skipped"] is None, report["relocate_project_job"]
    assert set(report["moto_cpu_ms_per_request"]) >= {"DeleteObject (peers)", "CopyObject, costalloc's archive"}
    assert all(cost > 0 for cost in report["moto_cpu_ms_per_request"].values())

    assert set(report["scale"]) == set(BACKENDS)
    if MARIADB_ENABLED:
        assert report["scale"]["mariadb"]["buffer_pool_mb"] == pool_before + BUFFER_POOL_STEP_MB
        assert _buffer_pool_mb() == pool_before
    for scale in report["scale"].values():
        assert scale["total_versions"] == 400
        # Of the 100-version project: 88 version handles in managed storage (of 98: two versions name
        # other handles, ten are external), one same-key twin, 25 previews; two are conflicts (a
        # handle and its preview, also named by the 20-version project, which has another target).
        assert {size: (found["rows"], found["conflicts"]) for size, found in scale["files_out_of_place"].items()} == {
            "100": (88 + 1 + 25 - 2, 2),
            "20": (19, 4),
        }
        check = scale["no_misplaced_files"]
        assert (check["misplaced_files"], check["conflict_files"]) == (112, 2)
        assert scale["incremental_refresh"]["full_refresh"] is False
        assert scale["incremental_refresh"]["rows_upserted"] == 0
        # The measured projects arrived after the full refresh: the incremental one replicated them
        # and, having changed more than a tenth of each table, refreshed the statistics.
        assert scale["change"]["versions_added"] == 120
        assert scale["changed_refresh"]["rows_upserted"] > 120
        assert scale["changed_refresh"]["analyzed"] == {"entity_replication": True, "file_replication": True}
        assert scale["plan"]["rows"]["rows_actual"] > 0 and scale["plan"]["rows"]["nodes"]
        assert scale["plan"]["sharing"]["nodes"]
        probes = [*scale["files_out_of_place"].values(), check]
        assert all(found["peak_rss_mb"] >= found["baseline_rss_mb"] > 0 for found in probes)
        assert all(len(found["seconds_of_runs"]) == ROUNDS for found in probes)

    assert report["repoint"]["handles"] == 50 and report["repoint"]["baseline_handles"] == 10
    assert set(report["targets"]) == {
        CPU_TARGET,
        VERSIONED_RATIO_TARGET,
        COPIED_TARGET,
        *REQUESTS_TARGETS.values(),
        *PLANNING_TARGETS,
        *(f"{target} on {backend}" for target in PLANNING_TARGETS for backend in BACKENDS[1:]),
        SMALL_RUN_TARGET,
        "repoint handles/s",
    }
    # The listings and the bucket's state amortised over this tiny bundle's six files; a real
    # bundle has hundreds.
    targets = report["targets"]
    assert targets[REQUESTS_TARGETS[COSTALLOC]]["value"] == pytest.approx((FILES + 6) / FILES)
    assert targets[REQUESTS_TARGETS[COSTALLOC_COPY]]["value"] == pytest.approx((2 * FILES + 2) / FILES)
    assert targets[COPIED_TARGET] == {"value": 1.0, "target": "<= 1", "met": True}
    # No D = 50 ms heat or large objects in this run: named, with no figure.
    assert set(report["targets_without_figure"]) == {
        LARGE_TARGET,
        *(f"costalloc/{peer} at D={RATIO_LATENCY_MS} ms" for peer in RATIO_PEERS),
    }


def _buffer_pool_mb() -> int:
    engine = create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT @@innodb_buffer_pool_size")).scalar_one()) // 1024**2
    finally:
        engine.dispose()


def test_bad_sizes_are_refused_before_anything_starts():
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--scale-total", "10", "--scale-projects", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "--scale-projects add up to more than --scale-total" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_every_lane_leads_one_round_in_turn():
    firsts = [lane_order(number)[0] for number in range(len(LANES))]
    assert sorted(firsts) == sorted(LANES)
    assert all(sorted(lane_order(number)) == sorted(LANES) for number in range(7))


def test_layout_puts_the_measured_projects_first_and_fills_up_to_the_total():
    projects = layout([1000, 100], 5000, 1500)
    assert [(p.project_id, p.versions) for p in projects] == [(1, 1000), (2, 100), (3, 1500), (4, 1500), (5, 900)]
    assert sum(p.versions for p in projects) == 5000
    # Entity ranges follow each other without overlap.
    for previous, project in itertools.pairwise(projects):
        assert project.first_entity == previous.first_entity + previous.versions // VERSIONS
    with pytest.raises(ValueError):
        layout([6000], 5000, 1500)


def test_spread_and_profile_summary(tmp_path):
    assert Spread.of([3.0, 1.0, 2.0]).as_dict() == {"median": 2.0, "min": 1.0, "max": 3.0, "samples": 3}
    raw = tmp_path / "raw.txt"
    raw.write_text("main;serve;copy 3\nmain;serve;log 1\n")
    profile = summarize("moto", raw)
    assert profile.samples == 4
    assert (profile.self_time[0].frame, profile.self_time[0].share) == ("copy", 0.75)
    assert {spot.frame: spot.share for spot in profile.inclusive}["serve"] == 1.0


def test_a_profile_sample_counts_for_its_innermost_kind_of_work(tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "run (costalloc_pipeline/mover/copier.py:9);_make_api_call (botocore/client.py:1);"
        "add_auth (botocore/auth.py:2);digest (/usr/lib/python3.11/hmac.py:3) 2\n"
        "run (costalloc_pipeline/mover/copier.py:9);_make_api_call (botocore/client.py:1);"
        "serialize (botocore/serialize.py:4) 1\n"
        "run (costalloc_pipeline/mover/copier.py:9);urlopen (urllib3/connectionpool.py:5);"
        "sendall (/usr/lib/python3.11/socket.py:6) 1\n"
        "<module> (app.py:1) 1\n"
    )
    kinds = {spot.frame: spot.share for spot in summarize("costalloc", raw).kinds}
    assert kinds == {KINDS[0][0]: 0.4, KINDS[1][0]: 0.2, KINDS[3][0]: 0.2, OTHER_KIND: 0.2}


def _lane_run(files_per_second: float, client_ms: float, requests: dict[str, int]) -> LaneRun:
    files = 100
    return LaneRun(
        seconds=files / files_per_second,
        files=files,
        object_size=1024,
        server_cpu_seconds=0.2,
        client_cpu_seconds=client_ms * files / 1000,
        proxy_cpu_seconds=0.01,
        requests=requests,
    )


def test_the_race_targets_are_judged_from_the_medians_of_their_heats():
    options = RaceOptions(100, 1024, 3, (0, RATIO_LATENCY_MS), None, 8, 1024, 20)
    race = RaceResult(options)
    copies_and_listings = {"PUT": 200, "GET": 2}
    for latency_ms, costalloc_rate in ((0, 100.0), (RATIO_LATENCY_MS, 60.0)):
        heat = Heat(latency_ms, 100, 1024)
        heat.runs = {
            lane: [_lane_run(rate, 1.0, {"PUT": 100, "DELETE": 100}) for rate in (40, 50, 70)] for lane in LANES
        }
        heat.runs[COSTALLOC] = [_lane_run(rate, 1.5, copies_and_listings) for rate in (costalloc_rate, 1, 1000)]
        heat.relocations[COSTALLOC] = [_relocation({"CopyObject": 100, "DeleteObjects": 2})]
        heat.relocations[COSTALLOC_COPY] = [_relocation({"CopyObject": 200})]
        race.heats.append(heat)
    race.large = Heat(20, 100, 1024)
    race.large.runs = {lane: [_lane_run(50, 1.0, {"PUT": 100})] for lane in LANES}
    race.large.runs[COSTALLOC] = [_lane_run(40, 1.0, {"PUT": 100})]
    checks = {check.name: (check.value, check.met) for check in BenchReport({}, race=race).checks()}
    # costalloc's median rate at 50 ms (60) over every peer's median (50).
    for peer, met in (("s5cmd", True), ("awscli", False), ("rclone", False)):
        assert checks[f"costalloc/{peer} at D={RATIO_LATENCY_MS} ms"] == (pytest.approx(1.2), met)
    assert checks[CPU_TARGET] == (pytest.approx(1.5), True)
    # At 0 ms, 100 over 50.
    assert checks[VERSIONED_RATIO_TARGET] == (pytest.approx(2.0), True)
    assert checks[REQUESTS_TARGETS[COSTALLOC]] == (pytest.approx(2.02), False)
    assert checks[REQUESTS_TARGETS[COSTALLOC_COPY]] == (pytest.approx(2.0), True)
    assert checks[COPIED_TARGET] == (pytest.approx(1.0), True)
    assert checks[LARGE_TARGET] == (pytest.approx(0.8), False)
    assert BenchReport({}, race=race).unmeasured() == {}


def _relocation(calls: dict[str, int]) -> RelocationRun:
    result = BundleResult()
    result.moved_files = 100
    return RelocationRun(1.0, 1, result, Counter(calls), sum(calls.values()))
