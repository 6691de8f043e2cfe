"""The benchmark runs, once, at a tiny size: every section reports, against real moto and PostgreSQL.

No timing is asserted (this machine's speed is not under test); counts are.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bulk_rows import VERSIONS, layout
from bench.profiling import summarize
from bench.race import LANES, lane_order
from bench.stats import Spread

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("COSTALLOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FILES = 6
ROUNDS = 1


@pytest.mark.skipif(os.environ.get("COSTALLOC_TEST_POSTGRES", "on") == "off", reason="the benchmark needs PostgreSQL")
def test_the_benchmark_runs_at_a_tiny_size_and_reports_every_section(tmp_path):
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
        "--scale-total",
        "400",
        "--scale-projects",
        "100,20",
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
    assert set(race["files_per_second"]) == set(LANES)
    assert all(spread["samples"] == ROUNDS for spread in race["files_per_second"].values())
    # One verified copy and one archive copy per file; no HEAD, but a listing of the sources and
    # one of the target keys per bundle (this tiny project is one bundle).
    assert race["costalloc_calls"] == {"CopyObject": 2 * FILES * ROUNDS, "ListObjectsV2": 2 * ROUNDS}
    assert race["costalloc_moved_files"] == FILES * ROUNDS
    assert report["relocate_project_job"]["skipped"] is None, report["relocate_project_job"]
    assert set(report["moto_cpu_ms_per_request"]) >= {"DeleteObject (peers)", "CopyObject, costalloc's archive"}
    assert all(cost > 0 for cost in report["moto_cpu_ms_per_request"].values())

    scale = report["scale"]
    assert scale["total_versions"] == 400
    assert {size: found["rows"] for size, found in scale["files_out_of_place"].items()} == {"100": 100, "20": 20}
    assert scale["incremental_refresh"]["full_refresh"] is False
    assert scale["incremental_refresh"]["rows_upserted"] == 0
    assert all(found["peak_rss_mb"] >= found["baseline_rss_mb"] > 0 for found in scale["files_out_of_place"].values())
    assert all(len(found["seconds_of_runs"]) == ROUNDS for found in scale["files_out_of_place"].values())

    assert report["repoint"]["handles"] == 50 and report["repoint"]["baseline_handles"] == 10
    assert set(report["targets"]) == {
        "costalloc/s5cmd",
        "costalloc/awscli",
        "requests per moved file",
        "throughput with latency / without",
        "files_out_of_place rows/s",
        "files_out_of_place peak RSS MB",
        "incremental refresh seconds",
        "repoint handles/s",
    }
    # Two listings amortised over this tiny bundle's six files; a real bundle has hundreds.
    assert report["targets"]["requests per moved file"]["value"] == pytest.approx((2 * FILES + 2) / FILES)


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
