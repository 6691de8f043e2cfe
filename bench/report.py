"""The benchmark's figures, the issue's targets, and their rendering as plain lines or JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.end_to_end import JobRun
from bench.profiling import ProcessProfile
from bench.race import COSTALLOC, COSTALLOC_COPY, COSTALLOC_LANES, FIGURES, Heat, RaceResult
from bench.repoint_bench import RepointResult
from bench.request_costs import peer_bound
from bench.scale import ScaleResult
from bench.scale_out import ScaleOutResult
from bench.small_run import SMALL_RUN_TARGET, SmallRunResult

# The delay of the race's ratio targets, and the peers they compare with (each at its defaults).
RATIO_LATENCY_MS = 50
RATIO_PEERS = ("s5cmd", "awscli", "rclone")
LARGE_TARGET = "large objects: costalloc MB/s / best peer"
CPU_TARGET = "client CPU ms per moved file at D=0 ms"
VERSIONED_RATIO_TARGET = "costalloc/s5cmd at D=0 ms, versioned archive mode"
COPIED_TARGET = "bytes copied per moved byte, versioned archive mode"
# Requests per moved file, by costalloc lane.
REQUESTS_TARGETS = {
    COSTALLOC: "requests per moved file, versioned archive mode",
    COSTALLOC_COPY: "requests per moved file, copy archive mode",
}
RACE_TARGETS: dict[str, tuple[str, float]] = {
    f"costalloc/s5cmd at D={RATIO_LATENCY_MS} ms": (">=", 1.0),
    f"costalloc/awscli at D={RATIO_LATENCY_MS} ms": (">=", 1.5),
    f"costalloc/rclone at D={RATIO_LATENCY_MS} ms": (">=", 4.0),
    VERSIONED_RATIO_TARGET: (">=", 1.0),
    CPU_TARGET: ("<=", 2.0),
    COPIED_TARGET: ("<=", 1.0),
    **dict.fromkeys(REQUESTS_TARGETS.values(), ("<=", 2.0)),
    LARGE_TARGET: (">=", 1.0),
}
# The targets: name -> (comparison, threshold).
TARGETS: dict[str, tuple[str, float]] = {
    **RACE_TARGETS,
    "files_out_of_place rows/s": (">=", 500_000),
    "files_out_of_place peak RSS MB": ("<=", 600),
    "no_misplaced_files check seconds": ("<=", 10.0),
    "incremental refresh seconds": ("<", 5.0),
    "repoint handles/s": (">=", 20_000),
    SMALL_RUN_TARGET: ("<", 15.0),
}


# The width of a target's name in the plain report.
LABEL_WIDTH = 52


@dataclass(frozen=True)
class TargetCheck:
    name: str
    value: float
    # The database a planning figure was measured on, when not PostgreSQL (the issue's targets' own).
    backend: str = "postgresql"

    @property
    def label(self) -> str:
        return self.name if self.backend == "postgresql" else f"{self.name} on {self.backend}"

    @property
    def comparison(self) -> str:
        return TARGETS[self.name][0]

    @property
    def threshold(self) -> float:
        return TARGETS[self.name][1]

    @property
    def met(self) -> bool:
        value, threshold = self.value, self.threshold
        return {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[self.comparison]

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "target": f"{self.comparison} {self.threshold:g}", "met": self.met}


@dataclass
class BenchReport:
    environment: dict[str, Any]
    race: RaceResult | None = None
    job: JobRun | None = None
    # One per database planned on.
    scale: list[ScaleResult] = field(default_factory=list)
    repoint: RepointResult | None = None
    profiles: list[ProcessProfile] = field(default_factory=list)
    # moto CPU milliseconds per request, by kind (bench.request_costs).
    request_costs: dict[str, float] = field(default_factory=dict)
    small_run: SmallRunResult | None = None
    scale_out: ScaleOutResult | None = None

    # -- figures ------------------------------------------------------------------------------

    def requests_per_file(self, lane: str = COSTALLOC) -> float | None:
        """Requests moto was sent per file the lane moved, over every small-object heat."""
        assert self.race is not None
        runs = [run for heat in self.race.heats for run in heat.runs.get(lane, [])]
        return sum(sum(run.requests.values()) for run in runs) / sum(run.files for run in runs) if runs else None

    def copied_per_moved_byte(self, lane: str = COSTALLOC) -> float | None:
        """Bytes the lane's copy requests copied per byte it moved, over the small-object heats: each
        object is single-part there, so one CopyObject copies one whole object."""
        assert self.race is not None
        runs = [run for heat in self.race.heats for run in heat.relocations.get(lane, [])]
        moved = sum(run.result.moved_files for run in runs)
        return sum(run.calls["CopyObject"] for run in runs) / moved if moved else None

    def unmeasured(self) -> dict[str, str]:
        """The race's targets this run has no figure for, with why."""
        if self.race is None:
            return {}
        measured = {check.name for check in self.checks()}
        missing = [name for name in RACE_TARGETS if name not in measured]
        return dict.fromkeys(missing, "not measured in this run (its delay or lanes did not run)")

    def _race_checks(self, race: RaceResult) -> list[TargetCheck]:
        checks: list[TargetCheck] = []
        at_ratio = race.heat_at(RATIO_LATENCY_MS)
        if at_ratio is not None:
            checks += [
                TargetCheck(f"costalloc/{peer} at D={RATIO_LATENCY_MS} ms", at_ratio.ratio(peer))
                for peer in RATIO_PEERS
                if peer in at_ratio.runs
            ]
        at_zero = race.heat_at(0)
        if at_zero is not None:
            checks.append(TargetCheck(CPU_TARGET, at_zero.spread(COSTALLOC, "client_cpu_ms_per_file").median))
            if "s5cmd" in at_zero.runs:
                checks.append(TargetCheck(VERSIONED_RATIO_TARGET, at_zero.ratio("s5cmd")))
        for lane, name in REQUESTS_TARGETS.items():
            requests = self.requests_per_file(lane)
            if requests is not None:
                checks.append(TargetCheck(name, requests))
        copied = self.copied_per_moved_byte()
        if copied is not None:
            checks.append(TargetCheck(COPIED_TARGET, copied))
        large = race.large
        if large is not None and large.peers():
            best = max(large.spread(peer, "megabytes_per_second").median for peer in large.peers())
            checks.append(TargetCheck(LARGE_TARGET, large.spread(COSTALLOC, "megabytes_per_second").median / best))
        return checks

    def checks(self) -> list[TargetCheck]:
        checks: list[TargetCheck] = []
        if self.race is not None:
            checks += self._race_checks(self.race)
        for scale in self.scale:
            if scale.out_of_place:
                probe = scale.out_of_place[max(scale.out_of_place)]
                checks.append(TargetCheck("files_out_of_place rows/s", probe.rows_per_second, scale.backend))
                checks.append(TargetCheck("files_out_of_place peak RSS MB", probe.peak_rss_mb, scale.backend))
            if scale.check is not None:
                checks.append(TargetCheck("no_misplaced_files check seconds", scale.check.seconds, scale.backend))
            if scale.incremental_refresh is not None:
                refresh = scale.incremental_refresh.seconds
                checks.append(TargetCheck("incremental refresh seconds", refresh, scale.backend))
        if self.repoint is not None:
            checks.append(TargetCheck("repoint handles/s", self.repoint.handles_per_second))
        if self.small_run is not None:
            checks.append(TargetCheck(SMALL_RUN_TARGET, self.small_run.chosen.median))
        return checks

    # -- rendering ----------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"environment": self.environment}
        if self.race is not None:
            data["race"] = _race_dict(self.race)
        if self.job is not None:
            data["relocate_project_job"] = {
                "seconds": self.job.seconds,
                "files_per_second": self.job.files_per_second,
                "skipped": self.job.skipped,
            }
        if self.scale:
            data["scale"] = {scale.backend: scale.as_dict() for scale in self.scale}
        if self.repoint is not None:
            data["repoint"] = {
                "handles": self.repoint.handles,
                "seconds": self.repoint.seconds,
                "handles_per_second": self.repoint.handles_per_second,
                "baseline_handles": self.repoint.baseline_handles,
                "baseline_seconds": self.repoint.baseline_seconds,
                "baseline_handles_per_second": self.repoint.baseline_per_second,
                "ratio": self.repoint.handles_per_second / self.repoint.baseline_per_second,
            }
        if self.request_costs:
            data["moto_cpu_ms_per_request"] = self.request_costs
            data["costalloc_over_peer_bound"] = peer_bound(self.request_costs)
        if self.profiles:
            data["profiles"] = {
                profile.name: {
                    "raw": str(profile.raw_path),
                    "samples": profile.samples,
                    "self": [[spot.share, spot.frame] for spot in profile.self_time],
                    "inclusive": [[spot.share, spot.frame] for spot in profile.inclusive],
                    "kinds": [[spot.share, spot.frame] for spot in profile.kinds],
                }
                for profile in self.profiles
            }
        if self.small_run is not None:
            data["small_run"] = self.small_run.as_dict()
        if self.scale_out is not None:
            data["scale_out"] = self.scale_out.as_dict()
        data["targets"] = {check.label: check.as_dict() for check in self.checks()}
        data["targets_without_figure"] = self.unmeasured()
        return data

    def lines(self) -> list[str]:
        env = self.environment
        out = [
            f"costalloc benchmark  {env['date']}  {env['cores']} cores  python {env['python']}",
            "versions: " + ", ".join(f"{name} {value}" for name, value in env["versions"].items()),
            f"command: {env['command']}",
        ]
        if self.race is not None:
            out += self._race_lines()
        if self.job is not None:
            out.append("")
            if self.job.seconds is None:
                out.append(f"relocate_project job (end to end): not timed: {self.job.skipped}")
            else:
                out.append(
                    f"relocate_project job (end to end, sensor + run start-up included): {self.job.seconds:.1f} s, "
                    f"{self.job.files_per_second:.1f} files/s (not used in the ratios)"
                )
        for scale in self.scale:
            out += self._scale_lines(scale)
        if self.repoint is not None:
            r = self.repoint
            out += [
                "",
                f"repoint on PostgreSQL: {r.handles:,} etag-conditional repoints in {r.seconds:.2f} s = "
                f"{r.handles_per_second:,.0f} handles/s",
                f"  per-row autocommit baseline: {r.baseline_handles:,} in {r.baseline_seconds:.2f} s = "
                f"{r.baseline_per_second:,.0f} handles/s; "
                f"batched/baseline {r.handles_per_second / r.baseline_per_second:.1f}x",
            ]
        if self.request_costs:
            out += ["", "moto CPU per request, by kind (1 KiB objects, the same core placement as the race):"]
            out += [f"  {kind:40s} {cost:6.2f} ms" for kind, cost in self.request_costs.items()]
            out.append(
                f"  bound on costalloc/peer when moto is the bottleneck: (copy + delete) / (verified copy + archive) "
                f"= {peer_bound(self.request_costs):.2f}"
            )
        for profile in self.profiles:
            out += [
                "",
                f"profile of {profile.name} ({profile.samples} samples of running threads; raw: {profile.raw_path})",
            ]
            out += [f"  kind {spot.share:6.1%}  {spot.frame}" for spot in profile.kinds]
            out += [f"  self {spot.share:6.1%}  {spot.frame}" for spot in profile.self_time]
        if self.small_run is not None:
            out += ["", *self.small_run.lines()]
        if self.scale_out is not None:
            out += ["", *self.scale_out.lines()]
        out += ["", "targets:"]
        for check in self.checks():
            verdict = "met" if check.met else "MISSED"
            out.append(
                f"  {check.label:{LABEL_WIDTH}s} {check.value:14,.3f}  "
                f"target {check.comparison} {check.threshold:g}  {verdict}"
            )
        for name, reason in self.unmeasured().items():
            out.append(f"  {name:{LABEL_WIDTH}s} {'-':>14s}  target {_target_text(name)}  {reason}")
        return out

    def _race_lines(self) -> list[str]:
        assert self.race is not None
        race = self.race
        out = [
            "",
            f"fair move race: every lane through a proxy delaying each request by D ms in front of moto; "
            f"fresh identical data per lane and round, lanes alternating, medians of {race.options.rounds} rounds",
            f"  {race.placement}; the proxy runs beside the clients",
        ]
        out += [f"  lane {lane} did not run: {reason}" for lane, reason in race.unavailable.items()]
        for heat in race.heats:
            out += _heat_lines(heat, "files_per_second", "files/s")
        if race.large is not None:
            out += _heat_lines(race.large, "megabytes_per_second", "MB/s")
        for lane in COSTALLOC_LANES:
            calls = _lane_calls(race, lane)
            requests, copied = self.requests_per_file(lane), self.copied_per_moved_byte(lane)
            if requests is None or copied is None:
                continue
            out.append(
                f"  {lane}'s S3 calls over the small-object heats: "
                f"{', '.join(f'{op} {count}' for op, count in sorted(calls.items()))}; "
                f"{requests:.3f} requests per moved file at the proxy, {copied:.2f} bytes copied per moved byte"
            )
        return out

    def _scale_lines(self, scale: ScaleResult) -> list[str]:
        out = [
            "",
            f"planning at scale on {scale.backend}: {scale.total_versions:,} handle versions "
            f"({scale.rows_seconds:.0f} s to write the first part)"
            + (f", InnoDB buffer pool {scale.buffer_pool_mb:,} MB" if scale.buffer_pool_mb is not None else ""),
        ]
        if scale.full_refresh is not None:
            f = scale.full_refresh
            out.append(
                f"  initial full refresh: {f.seconds:.1f} s ({f.figures['replica_rows']:,} replica rows), "
                f"peak RSS {f.peak_rss_mb:.0f} MB"
            )
        if scale.change is not None and scale.changed_refresh is not None:
            c, f = scale.change, scale.changed_refresh
            out.append(
                f"  then {c.versions_added:,} versions added and {c.handles_updated:,} handles updated "
                f"({c.seconds:.0f} s); incremental refresh: {f.seconds:.1f} s, {f.figures['rows_upserted']:,} rows "
                f"upserted, statistics refreshed: {f.figures['analyzed']}"
            )
        if scale.incremental_refresh is not None:
            f = scale.incremental_refresh
            out.append(
                f"  incremental refresh, nothing changed: {f.seconds:.2f} s (median of {f.spread.samples}, min "
                f"{f.spread.low:.2f}, max {f.spread.high:.2f}; {f.figures['rows_read']} rows re-read, "
                f"{f.figures['rows_upserted']} upserted), peak RSS {f.peak_rss_mb:.0f} MB"
            )
        for query, plan in scale.plan.items():
            out.append(
                f"  plan of the largest project's {query} query after the incremental refresh: "
                f"{' > '.join(plan['nodes'])}; rows estimated {plan['rows_estimated']:,.0f}, found "
                f"{plan['rows_actual']:,.0f} ({plan['seconds']:.2f} s under EXPLAIN ANALYZE)"
            )
        for size, probe in sorted(scale.out_of_place.items()):
            rows = probe.figures["rows"]
            out.append(
                f"  files_out_of_place, project of {size:,} versions: {rows:,} rows in {probe.seconds:.2f} s "
                f"(median of {probe.spread.samples}, min {probe.spread.low:.2f}, max {probe.spread.high:.2f}) = "
                f"{probe.rows_per_second:,.0f} rows/s, peak RSS {probe.peak_rss_mb:.0f} MB "
                f"(after imports {probe.figures['baseline_rss_mb']:.0f} MB; {probe.figures['conflicts']} conflicts)"
            )
        if scale.check is not None:
            f = scale.check
            out.append(
                f"  no_misplaced_files of the largest project: {f.seconds:.2f} s (median of {f.spread.samples}, "
                f"min {f.spread.low:.2f}, max {f.spread.high:.2f}; {f.figures['misplaced_files']:,} misplaced, "
                f"{f.figures['conflict_files']} conflicts), peak RSS {f.peak_rss_mb:.0f} MB"
            )
        return out


def _lane_calls(race: RaceResult, lane: str) -> Counter[str]:
    return sum((run.calls for heat in race.heats for run in heat.relocations.get(lane, [])), start=Counter[str]())


def _target_text(name: str) -> str:
    comparison, threshold = TARGETS[name]
    return f"{comparison} {threshold:g}"


def _heat_dict(heat: Heat) -> dict[str, Any]:
    return {
        "latency_ms": heat.latency_ms,
        "files": heat.files,
        "object_size": heat.object_size,
        "lanes": {
            lane: {
                **{figure: heat.spread(lane, figure).as_dict() for figure in FIGURES},
                "requests": dict(sum((Counter(run.requests) for run in runs), start=Counter[str]())),
            }
            for lane, runs in heat.runs.items()
        },
        "costalloc_over": {
            peer: {figure: heat.ratio(peer, figure) for figure in ("files_per_second", "megabytes_per_second")}
            for peer in heat.peers()
        },
        "costalloc_copy_over": {
            peer: {
                figure: heat.ratio(peer, figure, COSTALLOC_COPY)
                for figure in ("files_per_second", "megabytes_per_second")
            }
            for peer in heat.peers()
            if COSTALLOC_COPY in heat.runs
        },
    }


def _race_dict(race: RaceResult) -> dict[str, Any]:
    return {
        "rounds": race.options.rounds,
        "placement": race.placement,
        "unavailable": race.unavailable,
        "heats": [_heat_dict(heat) for heat in race.heats],
        "large": _heat_dict(race.large) if race.large is not None else None,
        "costalloc_calls": {lane: dict(_lane_calls(race, lane)) for lane in COSTALLOC_LANES},
        "costalloc_moved_files": {
            lane: sum(run.result.moved_files for heat in race.heats for run in heat.relocations.get(lane, []))
            for lane in COSTALLOC_LANES
        },
    }


def _heat_lines(heat: Heat, rate: str, unit: str) -> list[str]:
    out = [
        "",
        f"  D = {heat.latency_ms:g} ms, {heat.files:,} objects of {heat.object_size:,} bytes:",
        f"    {'lane':14s} {unit + ' (min, max)':>26s} {'client ms/file':>15s} {'moto ms/file':>13s} "
        f"{'proxy ms/file':>14s} {'requests/file':>14s} {'moto busy':>10s} "
        + " ".join(f"{lane + '/lane':>20s}" for lane in heat.costalloc_lanes()),
    ]
    for lane in heat.runs:
        spread = heat.spread(lane, rate)
        ratios = [f"{heat.ratio(lane, rate, ours):.2f}" if lane != ours else "" for ours in heat.costalloc_lanes()]
        out.append(
            f"    {lane:14s} {f'{spread.median:.1f} ({spread.low:.1f}, {spread.high:.1f})':>26s} "
            f"{heat.spread(lane, 'client_cpu_ms_per_file').median:15.2f} "
            f"{heat.spread(lane, 'server_cpu_ms_per_file').median:13.2f} "
            f"{heat.spread(lane, 'proxy_cpu_ms_per_file').median:14.2f} "
            f"{heat.spread(lane, 'requests_per_file').median:14.2f} "
            f"{heat.spread(lane, 'server_busy_share').median:10.0%} " + " ".join(f"{r:>20s}" for r in ratios)
        )
    return out
