"""`python -m bench`: sets up moto and PostgreSQL databases, runs every section, prints the report.

Progress goes to stderr; the report (plain lines, or JSON with --json) to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bench.dagster_home import RunFailed
from bench.dataset import discard, prepare_move
from bench.end_to_end import time_relocate_job
from bench.peers import PeerFailed, versions
from bench.profiling import ProcessProfile, sampling, summarize
from bench.race import LANES, RaceOptions, run_race
from bench.relocate import IncompleteMove, relocate
from bench.repoint_bench import RepointMismatch, run_repoint
from bench.report import BenchReport
from bench.request_costs import measure_request_costs
from bench.scale import BACKENDS, DEFAULT_MARIADB_BUFFER_POOL_MB, DEFAULT_MARIADB_URL, ScaleOptions, run_scale
from bench.scale_out import RABBITMQ_URL, ScaleOutOptions, run_scale_out
from bench.servers import DEFAULT_POSTGRES_URL, MotoServer, PostgresDatabases
from bench.small_run import run_small

# The default run stays within a few minutes; BENCHMARKS.md gives the full sizes
# (--scale-total 3000000 --scale-projects 1000000,100000).
SCALE_TOTAL = 300_000
# The fair race's delays per request, and the large-object race's objects.
RACE_DELAYS_MS = "0,20,50"
MAX_DELAY_MS = 10_000
LARGE_OBJECT_SIZE = 64 * 1024**2
SCALE_PROJECTS = "100000,10000"


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _sizes(raw: str) -> tuple[int, ...]:
    try:
        sizes = tuple(_positive(part) for part in raw.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"a comma-separated list of positive integers, got {raw!r}") from error
    if not sizes:
        raise argparse.ArgumentTypeError("at least one project size")
    return sizes


def _names_of(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """A parser of a comma-separated list of some of `allowed` (databases, race lanes)."""

    def parse(raw: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in raw.split(",") if part.strip())
        unknown = sorted(set(names) - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"a comma-separated list of {', '.join(allowed)}, got {raw!r}")
        return names

    return parse


def _delay(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"a delay in milliseconds, got {raw!r}") from error
    if not 0 <= value <= MAX_DELAY_MS:
        raise argparse.ArgumentTypeError(f"a delay from 0 to {MAX_DELAY_MS} ms, got {raw!r}")
    return value


def _delays(raw: str) -> tuple[float, ...]:
    delays = tuple(_delay(part) for part in raw.split(",") if part.strip())
    if not delays:
        raise argparse.ArgumentTypeError("at least one delay")
    return delays


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="costalloc against s5cmd, the AWS CLI and rclone on moto's S3 server behind a proxy "
        "delaying every request, and its planning and repoint steps on PostgreSQL. See BENCHMARKS.md.",
    )
    race = parser.add_argument_group("move race")
    race.add_argument("--files", type=_positive, default=1000, help="objects in the moved project (default 1000)")
    race.add_argument("--object-size", type=_positive, default=1024, help="bytes per object (default 1024)")
    race.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        help="rounds of every race lane, and runs of each repeatable planning step (default 3)",
    )
    race.add_argument(
        "--latency-ms",
        type=_delays,
        default=_delays(RACE_DELAYS_MS),
        help=f"delays D of the race's proxy, per request, comma-separated (default {RACE_DELAYS_MS})",
    )
    race.add_argument("--large-files", type=_positive, default=8, help="objects of the large-object race (default 8)")
    race.add_argument(
        "--large-object-size",
        type=_positive,
        default=LARGE_OBJECT_SIZE,
        help=f"bytes per object of the large-object race (default {LARGE_OBJECT_SIZE}, 64 MiB)",
    )
    race.add_argument(
        "--large-latency-ms", type=_delay, default=20, help="the large-object race's delay D (default 20)"
    )
    race.add_argument("--skip-large", action="store_true", help="no large-object race")
    race.add_argument(
        "--lanes",
        type=_names_of(LANES),
        default=LANES,
        help=f"the race's lanes, comma-separated, of {','.join(LANES)} (default all)",
    )
    race.add_argument("--concurrency", type=_positive, help="costalloc's copy concurrency (default: the settings')")
    race.add_argument(
        "--cost-requests", type=_positive, default=1000, help="requests of each kind to price moto's CPU per request"
    )
    race.add_argument("--skip-race", action="store_true")
    race.add_argument("--skip-job", action="store_true", help="do not time the relocate_project Dagster job")
    race.add_argument("--profile", metavar="DIR", help="also profile one costalloc lane and moto with py-spy into DIR")
    scale = parser.add_argument_group("planning at scale")
    scale.add_argument("--scale-total", type=_positive, default=SCALE_TOTAL, help="handle versions in the repository")
    scale.add_argument(
        "--scale-projects",
        type=_sizes,
        default=_sizes(SCALE_PROJECTS),
        help=f"sizes of the measured projects, comma-separated (default {SCALE_PROJECTS})",
    )
    scale.add_argument(
        "--scale-backends",
        type=_names_of(BACKENDS),
        default=BACKENDS,
        help=f"databases to plan on, comma-separated, of {','.join(BACKENDS)} (default all)",
    )
    scale.add_argument(
        "--mariadb-url",
        default=os.environ.get("COSTALLOC_BENCH_MARIADB_URL", DEFAULT_MARIADB_URL),
        help="a MariaDB URL allowed to create and drop databases (default: $COSTALLOC_BENCH_MARIADB_URL "
        f"or {DEFAULT_MARIADB_URL})",
    )
    scale.add_argument(
        "--mariadb-buffer-pool-mb",
        type=int,
        default=DEFAULT_MARIADB_BUFFER_POOL_MB,
        help="raise the MariaDB server's InnoDB buffer pool to at least this for the run, then put it back "
        f"(0 leaves it; default {DEFAULT_MARIADB_BUFFER_POOL_MB})",
    )
    scale.add_argument("--skip-scale", action="store_true")
    repoint = parser.add_argument_group("repoint")
    repoint.add_argument("--repoint-handles", type=_positive, default=100_000)
    repoint.add_argument("--repoint-baseline", type=_positive, default=10_000, help="handles of the per-row baseline")
    repoint.add_argument("--skip-repoint", action="store_true")
    dagster = parser.add_argument_group("small run and scale-out (Dagster daemon, Celery workers)")
    dagster.add_argument("--small-run-files", type=_positive, default=100, help="files of each small project")
    dagster.add_argument("--skip-small-run", action="store_true", help="do not time small runs under the daemon")
    dagster.add_argument("--scale-out-files", type=_positive, default=4000, help="files of the scale-out project")
    dagster.add_argument("--scale-out-bundle-files", type=_positive, default=500, help="files per bundle")
    dagster.add_argument("--scale-out-concurrency", type=_positive, default=8, help="copies in flight per bundle")
    dagster.add_argument("--scale-out-latency-ms", type=_delay, default=50, help="delay per S3 request (default 50)")
    dagster.add_argument("--celery-broker-url", default=RABBITMQ_URL, help=f"default {RABBITMQ_URL}")
    dagster.add_argument("--skip-scale-out", action="store_true", help="do not move a project over 1, 2, 4 workers")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("COSTALLOC_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a PostgreSQL URL allowed to create and drop databases (default: $COSTALLOC_BENCH_POSTGRES_URL "
        f"or {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument("--work-dir", help="folder for logs and scratch files (default: a new temporary one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if sum(args.scale_projects) > args.scale_total:
        parser.error(f"--scale-projects add up to more than --scale-total ({args.scale_total})")
    return args


def postgres_version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def environment(argv: Sequence[str], postgres_url: str) -> dict[str, Any]:
    found = versions()
    for package in ("boto3", "botocore", "SQLAlchemy", "psycopg", "pyarrow", "dagster"):
        found[package] = version(package)
    found["postgresql"] = postgres_version(postgres_url)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "load_average_at_start": os.getloadavg(),
        "versions": found,
        "command": "python -m bench " + shlex.join(argv),
    }


def profile_lane(
    moto: MotoServer, databases: PostgresDatabases, work_dir: Path, options: RaceOptions, out_dir: Path
) -> list[ProcessProfile]:
    stage = prepare_move(moto, databases, work_dir, options.files, options.object_size, options.concurrency)
    try:
        with sampling({"costalloc": os.getpid(), "moto": moto.pid}, out_dir) as paths:
            relocate(stage)
    finally:
        discard(stage, databases)
    return [summarize(name, path) for name, path in paths.items()]


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, argv: Sequence[str]) -> BenchReport:
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="costalloc-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    options = RaceOptions(
        files=args.files,
        object_size=args.object_size,
        rounds=args.rounds,
        latencies_ms=args.latency_ms,
        concurrency=args.concurrency,
        large_files=0 if args.skip_large else args.large_files,
        large_object_size=args.large_object_size,
        large_latency_ms=args.large_latency_ms,
        lanes=args.lanes,
    )
    report = BenchReport(environment(argv, args.postgres_url))
    with MotoServer(work_dir / "moto.log") as moto, PostgresDatabases(args.postgres_url) as databases:
        if not args.skip_race:
            report.race = run_race(moto, databases, work_dir, options, say)
            with moto.own_core():
                report.request_costs = measure_request_costs(moto, args.cost_requests)
        if not args.skip_job:
            stage = prepare_move(moto, databases, work_dir, options.files, options.object_size, options.concurrency)
            try:
                report.job = time_relocate_job(stage)
            finally:
                discard(stage, databases)
        if args.profile:
            report.profiles = profile_lane(moto, databases, work_dir, options, Path(args.profile))
        if not args.skip_scale:
            report.scale = run_scale(
                moto,
                databases,
                work_dir,
                ScaleOptions(
                    args.scale_total,
                    args.scale_projects,
                    args.rounds,
                    args.scale_backends,
                    args.mariadb_url,
                    args.mariadb_buffer_pool_mb,
                ),
                say,
            )
        if not args.skip_repoint:
            report.repoint = run_repoint(databases, args.repoint_handles, args.repoint_baseline, say)
        if not args.skip_small_run:
            report.small_run = run_small(moto, databases, work_dir, args.small_run_files, args.rounds, say)
        if not args.skip_scale_out:
            scale_out = ScaleOutOptions(
                args.scale_out_files,
                args.scale_out_latency_ms,
                args.scale_out_concurrency,
                args.scale_out_bundle_files,
                args.celery_broker_url,
            )
            report.scale_out = run_scale_out(moto, databases, work_dir, scale_out, say)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        report = run(args, argv)
    except OperationalError as error:
        print(f"bench: PostgreSQL is required at {args.postgres_url}: {error.orig}", file=sys.stderr)
        return 2
    except (PeerFailed, IncompleteMove, RepointMismatch, RunFailed) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
