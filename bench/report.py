"""The benchmark's figures, the issue's targets, and their rendering as plain lines or JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.end_to_end import JobRun
from bench.profiling import ProcessProfile
from bench.race import COSTALLOC, COSTALLOC_WITH_LATENCY, PEERS, RaceResult
from bench.repoint_bench import RepointResult
from bench.request_costs import peer_bound
from bench.scale import ScaleResult
from bench.stats import Spread

# The targets: name -> (comparison, threshold).
TARGETS: dict[str, tuple[str, float]] = {
    "costalloc/s5cmd": (">=", 1.0),
    "costalloc/awscli": (">=", 1.2),
    "requests per moved file": ("<=", 2.05),
    "throughput with latency / without": (">=", 0.8),
    "files_out_of_place rows/s": (">=", 250_000),
    "files_out_of_place peak RSS MB": ("<=", 600),
    "incremental refresh seconds": ("<", 5.0),
    "repoint handles/s": (">=", 20_000),
}


@dataclass(frozen=True)
class TargetCheck:
    name: str
    value: float

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
    scale: ScaleResult | None = None
    repoint: RepointResult | None = None
    profiles: list[ProcessProfile] = field(default_factory=list)
    # moto CPU milliseconds per request, by kind (bench.request_costs).
    request_costs: dict[str, float] = field(default_factory=dict)

    # -- figures ------------------------------------------------------------------------------

    def rates(self) -> dict[str, Spread]:
        assert self.race is not None
        return {lane: Spread.of([run.files_per_second for run in runs]) for lane, runs in self.race.lanes.items()}

    def costalloc_calls(self) -> Counter[str]:
        assert self.race is not None
        return sum((run.calls for run in self.race.relocations), start=Counter())

    def moved_files(self) -> int:
        assert self.race is not None
        return sum(run.result.moved_files for run in self.race.relocations)

    def server_bounds(self) -> dict[str, float]:
        """Per peer: the median moto CPU per file of the peer over costalloc's."""
        assert self.race is not None

        def cost(lane: str) -> float:
            return Spread.of([run.server_cpu_ms_per_file for run in self.race.lanes[lane]]).median

        return {peer: cost(peer) / cost(COSTALLOC) for peer in PEERS}

    def requests_per_file(self) -> float:
        return sum(self.costalloc_calls().values()) / self.moved_files()

    def checks(self) -> list[TargetCheck]:
        checks: list[TargetCheck] = []
        if self.race is not None:
            rates = self.rates()
            for peer in PEERS:
                checks.append(TargetCheck(f"costalloc/{peer}", rates[COSTALLOC].median / rates[peer].median))
            checks.append(TargetCheck("requests per moved file", self.requests_per_file()))
            checks.append(
                TargetCheck(
                    "throughput with latency / without",
                    rates[COSTALLOC_WITH_LATENCY].median / rates[COSTALLOC].median,
                )
            )
        if self.scale is not None and self.scale.out_of_place:
            largest = max(self.scale.out_of_place)
            probe = self.scale.out_of_place[largest]
            checks.append(TargetCheck("files_out_of_place rows/s", probe.figures["rows"] / probe.seconds))
            checks.append(TargetCheck("files_out_of_place peak RSS MB", probe.peak_rss_mb))
        if self.scale is not None and self.scale.incremental_refresh is not None:
            checks.append(TargetCheck("incremental refresh seconds", self.scale.incremental_refresh.seconds))
        if self.repoint is not None:
            checks.append(TargetCheck("repoint handles/s", self.repoint.handles_per_second))
        return checks

    # -- rendering ----------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"environment": self.environment}
        if self.race is not None:
            options = self.race.options
            data["race"] = {
                "files": options.files,
                "object_size": options.object_size,
                "rounds": options.rounds,
                "latency_seconds": options.latency,
                "files_per_second": {lane: spread.as_dict() for lane, spread in self.rates().items()},
                "server_cpu_ms_per_file": {
                    lane: Spread.of([run.server_cpu_ms_per_file for run in runs]).as_dict()
                    for lane, runs in self.race.lanes.items()
                },
                "server_busy_share": {
                    lane: Spread.of([run.server_busy_share for run in runs]).as_dict()
                    for lane, runs in self.race.lanes.items()
                },
                "client_cpu_ms_per_file": {
                    lane: Spread.of([run.client_cpu_ms_per_file for run in runs]).as_dict()
                    for lane, runs in self.race.lanes.items()
                },
                "placement": self.race.placement,
                "server_bound": self.server_bounds(),
                "costalloc_calls": dict(self.costalloc_calls()),
                "costalloc_http_requests": sum(run.http_requests for run in self.race.relocations),
                "costalloc_moved_files": self.moved_files(),
                "costalloc_bundles": self.race.relocations[0].bundles,
            }
        if self.job is not None:
            data["relocate_project_job"] = {
                "seconds": self.job.seconds,
                "files_per_second": self.job.files_per_second,
                "skipped": self.job.skipped,
            }
        if self.scale is not None:
            data["scale"] = {
                "total_versions": self.scale.total_versions,
                "rows_seconds": self.scale.rows_seconds,
                "full_refresh": self.scale.full_refresh.figures if self.scale.full_refresh else None,
                "incremental_refresh": self.scale.incremental_refresh.figures
                if self.scale.incremental_refresh
                else None,
                "files_out_of_place": {str(size): probe.figures for size, probe in self.scale.out_of_place.items()},
            }
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
                }
                for profile in self.profiles
            }
        data["targets"] = {check.name: check.as_dict() for check in self.checks()}
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
        if self.scale is not None:
            out += self._scale_lines()
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
            out += [f"  self {spot.share:6.1%}  {spot.frame}" for spot in profile.self_time]
        out += ["", "targets:"]
        for check in self.checks():
            verdict = "met" if check.met else "MISSED"
            out.append(
                f"  {check.name:36s} {check.value:14,.3f}  target {check.comparison} {check.threshold:g}  {verdict}"
            )
        return out

    def _race_lines(self) -> list[str]:
        assert self.race is not None
        options = self.race.options
        rates = self.rates()
        out = [
            "",
            f"move race: {options.files} objects of {options.object_size} bytes, {options.rounds} rounds, "
            "fresh identical data per lane and round, lanes alternating",
        ]
        for lane, runs in self.race.lanes.items():
            spread = rates[lane]
            server = Spread.of([run.server_cpu_ms_per_file for run in runs])
            client = Spread.of([run.client_cpu_ms_per_file for run in runs])
            busy = Spread.of([run.server_busy_share for run in runs])
            out.append(
                f"  {lane:18s} {spread.median:8.1f} files/s (min {spread.low:.1f}, max {spread.high:.1f}); "
                f"CPU per file: moto {server.median:.2f} ms, client {client.median:.2f} ms; moto busy {busy.median:.0%}"
            )
        out.append(f"  {self.race.placement}")
        for peer, bound in self.server_bounds().items():
            out.append(
                f"  moto CPU per {peer} file / per costalloc file: {bound:.2f} (costalloc/{peer} if both kept "
                "moto equally busy: the server-side work costalloc asks for, an archive copy where peers delete)"
            )
        calls = self.costalloc_calls()
        moved = self.moved_files()
        http = sum(run.http_requests for run in self.race.relocations)
        out.append(
            f"  costalloc S3 requests per moved file: {self.requests_per_file():.3f} "
            f"({', '.join(f'{op} {count}' for op, count in sorted(calls.items()))}; "
            f"{http} HTTP requests sent, retries included, for {moved} files)"
        )
        out.append(f"  latency lane: {options.latency * 1000:.0f} ms added before every request of costalloc's client")
        return out

    def _scale_lines(self) -> list[str]:
        assert self.scale is not None
        scale = self.scale
        out = [
            "",
            f"planning at scale on PostgreSQL: {scale.total_versions:,} handle versions "
            f"({scale.rows_seconds:.0f} s to write)",
        ]
        if scale.full_refresh is not None:
            f = scale.full_refresh
            out.append(f"  initial full refresh: {f.seconds:.1f} s, peak RSS {f.peak_rss_mb:.0f} MB")
        if scale.incremental_refresh is not None:
            f = scale.incremental_refresh
            out.append(
                f"  incremental refresh, nothing changed: {f.seconds:.2f} s (median of {f.spread.samples}, min "
                f"{f.spread.low:.2f}, max {f.spread.high:.2f}; {f.figures['rows_read']} rows re-read, "
                f"{f.figures['rows_upserted']} upserted), peak RSS {f.peak_rss_mb:.0f} MB"
            )
        for size, probe in sorted(scale.out_of_place.items()):
            rows = probe.figures["rows"]
            out.append(
                f"  files_out_of_place, project of {size:,} versions: {rows:,} rows in {probe.seconds:.2f} s "
                f"(median of {probe.spread.samples}, min {probe.spread.low:.2f}, max {probe.spread.high:.2f}) = "
                f"{rows / probe.seconds:,.0f} rows/s, peak RSS {probe.peak_rss_mb:.0f} MB "
                f"(after imports {probe.figures['baseline_rss_mb']:.0f} MB)"
            )
        return out
