"""A randomized simulation of the whole mover, in the style of FoundationDB's simulation tests and Jepsen.

From one integer seed it generates a small repository full of awkward cases (objects shared by
handles of two projects, one key in several buckets with different bytes, previews that are another
project's file, zero-byte and multipart objects, odd rows, external and UNLINKED handles) and a
schedule of actors: the admin assigning and unassigning projects, relocation runs (two of one
project at once, some crashing at a random step), resumes, other writers changing handles, the
check that ends a removal. The actors run interleaved one step at a time. Then the system is left to
settle the way a deployment would, and an oracle checks DESIGN.md section 4 against a model of what
every handle must read.

Determinism: each actor runs in its own thread with its own boto3 client and its own Engine, but
only one actor runs at a time. A token passes at switch points, before each S3 call of the actor
and at the start of each of its database transactions, and `random.Random(seed)` picks who goes
next. Never inside a transaction: a paused actor holds no lock another actor could wait for, so the
scheduler cannot deadlock the databases. The same seed gives the same schedule (on the same code:
a mover that makes other calls is interleaved otherwise), so a failure is replayed with
`COSTALLOC_SEED=<n> pytest tests/mover/test_interleavings.py -k <backend>`. Two things keep an actor
one thread: the production modules' ThreadPoolExecutors run their tasks in the caller's thread
during a schedule (SerialExecutor), and each actor opens the database under a URL of its own (an
alias of the same database), so code that calls engine_for(settings.repository_url) gets the
actor's engine. A crash raises `Crash` at a switch point and at every later one of the actor.

The oracle excuses only what the mover cannot mend: audit findings on rows that were broken before
the schedule began (a recorded size that lies, no key), conflicts, failed odd rows, and handles
whose target key holds other bytes (never overwritten).

Layout: adapters (every call into the production code), the clock, the scheduler, the generator,
the world (repository builder and model), the actors, settling, the oracle, and the driver.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import itertools
import json
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any, Self

from botocore.exceptions import ClientError
from helpers.rows import s3_file_row
from sqlalchemy import Connection, Engine, event, func, insert, select, text, update
from sqlalchemy import inspect as sql_inspect
from sqlalchemy.engine import make_url

from costalloc_pipeline import allocations
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, new_etag, utcnow
from costalloc_pipeline.errors import CostAllocError
from costalloc_pipeline.s3 import make_s3_client
from costalloc_pipeline.schema import replica as replica_schema
from costalloc_pipeline.schema import repository as repository_schema
from costalloc_pipeline.schema.repository import (
    AssociationState,
    FileStatus,
    MetadataType,
    MoveState,
    NodeType,
    cost_allocation,
    cost_allocation_project,
    files,
    move_ledger,
    node,
    node_revision,
    storage_location,
)

# moto's server in the tests accepts parts of 256 bytes and more (tests/conftest.py).
MULTIPART_THRESHOLD = 1024
PART_SIZE = 512
# A bundle of a relocation run repoints and archives its copies two at a time while it goes on
# copying, so its batches interleave with other actors and a crash falls between them.
REPOINT_BATCH = 2
# Simulated seconds. Far longer than a schedule's ordinary ticks, so they run out only when the
# scheduler jumps the clock (a long pause) and when everything settles at the end.
GRACE_SECONDS = 300
LEASE_SECONDS = 600
SETTLE_ROUNDS = 4
# Wall-clock seconds an actor may take to reach its next switch point before the harness gives up.
STEP_TIMEOUT = 60.0
# Wall-clock seconds for building a repository, for settling, for the oracle.
PHASE_TIMEOUT = 300.0
TRACE_LIMIT = 3000

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})
UNREADABLE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


# --- adapters: every call into the production code ------------------------------------------------
# These functions are the only place that knows the production code's API.


def simulation_settings(base: Settings) -> Settings:
    """Small multipart parts, small bundles (a run has several) and one copy at a time (the order of
    an actor's calls must not depend on threads)."""
    return base.with_changes(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_part_size=PART_SIZE,
        copy_concurrency=1,
        bundle_max_files=3,
        archive_grace_seconds=GRACE_SECONDS,
        lease_seconds=LEASE_SECONDS,
        # The default bucket gets costalloc's noncurrent-version rule too; each schedule then turns
        # every managed bucket's versioning on or off (Environment.reset): both archive methods run.
        default_bucket_versioning="enable",
    )


def _load_placement(bind: Engine | Connection) -> Any:
    from costalloc_pipeline.placement.rule import load_placement

    return load_placement(bind)


def _candidates(to_move: Any) -> list[Any]:
    """The run's candidates from the files_out_of_place dataset, as the relocation job makes them."""
    from costalloc_pipeline.mover.plan import candidates_of

    return candidates_of(to_move)


def _summary(result: Any) -> str:
    failed = getattr(result, "failed", {}) or {}
    return (
        f"moved {getattr(result, 'moved_files', '?')}, archived {getattr(result, 'archived_objects', '?')}, "
        f"changed meanwhile {getattr(result, 'changed_meanwhile', '?')}, failed {sorted(failed)}"
    )


def refresh_replica(engine: Engine) -> None:
    """The replication assets: `engine` is both the repository and the replica."""
    from costalloc_pipeline.replica.refresh import (
        refresh_entity_replication,
        refresh_file_replication,
    )

    refresh_entity_replication(engine, engine)
    refresh_file_replication(engine, engine)


def out_of_place(engine: Engine, project_id: int) -> list[Any]:
    """The files_out_of_place asset of the project, as the candidates of a run."""
    from costalloc_pipeline.placement.misplaced import find_out_of_place

    return _candidates(find_out_of_place(engine, project_id, _load_placement(engine)).to_move)


def relocate(
    settings: Settings,
    engine: Engine,
    s3: Any,
    project_id: int,
    run_id: str,
    clock: Callable[[], dt.datetime],
    candidates: list[Any],
) -> str:
    """The relocation of the project's candidates (the job's ops after files_out_of_place); a summary."""
    from costalloc_pipeline.mover import run as mover_run
    from costalloc_pipeline.mover.context import move_context

    ctx = move_context(settings, engine, s3, project_id, run_id, clock=clock, repoint_batch=REPOINT_BATCH)
    bounds = mover_run.BundleBounds(settings.bundle_max_files, settings.bundle_max_bytes, settings.max_bundles)
    return _summary(mover_run.relocate(ctx, candidates, bounds))


def run_relocation(
    settings: Settings, engine: Engine, s3: Any, project_id: int, run_id: str, clock: Callable[[], dt.datetime]
) -> str:
    """One relocation run of the project as the Dagster job runs it: replica, out-of-place, relocation."""
    refresh_replica(engine)
    return relocate(settings, engine, s3, project_id, run_id, clock, out_of_place(engine, project_id))


def run_resume(settings: Settings, s3: Any, project_id: int | None, clock: Callable[[], dt.datetime]) -> str:
    """`costalloc resume [PROJECT]`. It opens the repository as engine_for(settings.repository_url):
    an actor's settings name the actor's own engine."""
    from costalloc_pipeline.mover.recovery import resume

    outcomes = resume(settings, s3, project_id, clock)
    return (
        "; ".join(
            f"p{o.project_id}: archived {o.archived.archived_objects}, moved {o.moved.moved_files}, closed {o.closed}"
            for o in outcomes
        )
        or "nothing interrupted"
    )


def assign(settings: Settings, engine: Engine, s3: Any, project_id: int, name: str) -> str:
    """POST /entity/{id}/costAllocation as the admin; the allocation's bucket."""
    with engine.connect() as conn:
        caller = admin_caller(conn)
    return allocations.assign(engine, s3, settings, project_id, name, caller).cost_allocation.bucket


def unassign(engine: Engine, project_id: int) -> None:
    """DELETE /entity/{id}/costAllocation as the admin."""
    with engine.connect() as conn:
        caller = admin_caller(conn)
    allocations.unassign(engine, project_id, caller)


def finish_removals(engine: Engine, project_ids: Iterable[int]) -> list[int]:
    """What a relocation run does at its end: a REMOVING project with nothing misplaced leaves its allocation."""
    from costalloc_pipeline.removal import finish_removal_when_placed

    return [project_id for project_id in project_ids if finish_removal_when_placed(engine, project_id)]


def upload_destination(engine: Engine, project_id: int) -> tuple[str, int]:
    """GET /entity/{id}/uploadDestination as the admin: where a new file of the project goes (bucket, location)."""
    with engine.connect() as conn:
        caller = admin_caller(conn)
    destination = allocations.upload_destination(engine, project_id, caller)
    return destination.bucket, destination.storage_location_id


def audit_repository(engine: Engine, s3: Any, settings: Settings) -> Any:
    """The audit of `costalloc verify --read-back`, once every run is over: the audit reads leases
    against the real clock, and the simulated one is far ahead of it."""
    from costalloc_pipeline.audit import audit

    with engine.begin() as conn:
        conn.execute(repository_schema.relocation_lease.delete())
    with engine.connect() as conn:
        return audit(conn, s3, concurrency=8, read_back=True, retention_days=settings.archive_retention_days)


def provision_allocation(settings: Settings, engine: Engine, s3: Any, holder_project: int, name: str) -> str:
    """Creates the allocation and its bucket (through an assignment of an empty project)."""
    return assign(settings, engine, s3, holder_project, name)


# --- the simulated clock --------------------------------------------------------------------------


class SimClock:
    """Simulated time: a callable returning naive UTC, what the mover's `clock` argument expects.
    It starts at the real now, so timestamps the code still takes from its own utcnow() stay close,
    and moves only when the scheduler says so."""

    def __init__(self, start: dt.datetime) -> None:
        self._start = start
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._start + dt.timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset


# --- the scheduler --------------------------------------------------------------------------------


class Crash(BaseException):
    """A simulated process death: raised at a switch point and at every later one of the actor, so
    nothing more of it runs (an open transaction rolls back, as the server does for a dead client).
    A BaseException, so the mover's `except Exception` handlers do not swallow it."""


class HarnessError(Exception):
    """The harness itself failed (a timeout, an actor that never reached a switch point): not a finding."""


class SerialExecutor:
    """Stands in for ThreadPoolExecutor inside the production code during a schedule: tasks run one
    after another in the caller's thread, so each actor is one thread and the order of its calls is
    fixed. Like the real pool, a task's exception (a Crash too) is kept in its future."""

    def __init__(self, max_workers: int | None = None, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - a worker keeps whatever its task raised
            future.set_exception(error)
        return future

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[Any]:
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        return (future.result() for future in futures)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


# The production modules a run goes through, imported before their pools are replaced (a module
# imported later would keep the real ThreadPoolExecutor). Missing ones (old or new API) are skipped.
PRODUCTION_MODULES = (
    "costalloc_pipeline.audit",
    "costalloc_pipeline.mover.recovery",
    "costalloc_pipeline.placement.misplaced",
    "costalloc_pipeline.placement.rule",
    "costalloc_pipeline.placement.progress",
    "costalloc_pipeline.replica.refresh",
    "costalloc_pipeline.mover.archive",
    "costalloc_pipeline.mover.bundle",
    "costalloc_pipeline.mover.claims",
    "costalloc_pipeline.mover.context",
    "costalloc_pipeline.mover.copier",
    "costalloc_pipeline.mover.copy_step",
    "costalloc_pipeline.mover.handles",
    "costalloc_pipeline.mover.lease",
    "costalloc_pipeline.mover.ledger",
    "costalloc_pipeline.mover.objects",
    "costalloc_pipeline.mover.pipeline",
    "costalloc_pipeline.mover.plan",
    "costalloc_pipeline.mover.repoint",
    "costalloc_pipeline.mover.resume",
    "costalloc_pipeline.mover.run",
)


def import_production_modules() -> None:
    for name in PRODUCTION_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


@contextmanager
def serial_thread_pools() -> Iterator[None]:
    """Every ThreadPoolExecutor the production modules imported is a SerialExecutor meanwhile
    (multipart copies use a pool of 4 whatever the settings say)."""
    import_production_modules()
    patched = []
    for name, module in list(sys.modules.items()):
        if name.startswith("costalloc_pipeline") and getattr(module, "ThreadPoolExecutor", None) is ThreadPoolExecutor:
            patched.append(module)
            module.ThreadPoolExecutor = SerialExecutor  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.ThreadPoolExecutor = ThreadPoolExecutor  # type: ignore[attr-defined]


@dataclass
class Actor:
    index: int
    plan: ActorPlan
    slot: Slot
    settings: Settings
    run_id: str
    # Switch points passed (idle turns excluded); the crash comes at step crash_at.
    steps: int = 0
    crashed: bool = False
    parked: bool = False
    finished: bool = False
    # Connections of this actor with a transaction open: no pause while there is one.
    open_transactions: set = field(default_factory=set)
    outcome: str = "not started"
    thread: threading.Thread | None = None
    # An unexpected exception: a finding.
    error: str | None = None

    @property
    def name(self) -> str:
        return self.plan.name


class Scheduler:
    """Token passing: exactly one actor runs at a time, the others wait at a switch point. The
    driver (the test's thread) waits until the running actor parks again or ends, then picks the
    next one with the seed's Random and ticks the clock."""

    def __init__(self, rng: random.Random, clock: SimClock, stickiness: float, timeout: float = STEP_TIMEOUT) -> None:
        self._rng = rng
        self._clock = clock
        self._stickiness = stickiness
        self._timeout = timeout
        self._cond = threading.Condition()
        self._turn: Actor | None = None
        self._aborted = False
        self._pending: dict[int, str] = {}
        self.trace: list[str] = []
        self.decisions = 0
        self.foreign_threads: set[str] = set()

    def _note(self, line: str) -> None:
        if len(self.trace) < TRACE_LIMIT:
            self.trace.append(f"{len(self.trace) + 1:5d} t+{int(self._clock.offset):5d}s {line}")

    def switch(self, actor: Actor, label: str, counts: bool = True) -> None:
        """A switch point of `actor`, called in its own thread just before the step `label`."""
        with self._cond:
            if actor.thread is not threading.current_thread():
                # A pool the harness did not replace: the actor's calls would race each other.
                self.foreign_threads.add(f"{actor.name}: {threading.current_thread().name} at {label}")
            if actor.crashed:
                raise Crash(label)
            if counts:
                actor.steps += 1
            if actor.open_transactions:
                # Never pause inside a transaction; the actor may still die here (it rolls back).
                self._note(f"{actor.name}: {label} (in a transaction)")
                self._crash_if_due(actor, label)
                return
            self._pending[actor.index] = label
            self._turn = None
            actor.parked = True
            self._cond.notify_all()
            granted = self._cond.wait_for(lambda: self._turn is actor or self._aborted, timeout=self._timeout)
            actor.parked = False
            if not granted or self._aborted:
                actor.crashed = True
                raise Crash("the harness stopped the schedule")
            self._crash_if_due(actor, label)

    def _crash_if_due(self, actor: Actor, label: str) -> None:
        crash_at = actor.plan.crash_at
        if crash_at is not None and actor.steps >= crash_at:
            actor.crashed = True
            self._note(f"{actor.name}: CRASH before {label}")
            raise Crash(label)

    def _actor_thread(self, actor: Actor, body: Callable[[Actor], str]) -> None:
        actor.thread = threading.current_thread()
        try:
            self.switch(actor, "start", counts=False)
            actor.outcome = body(actor)
        except Crash:
            actor.outcome = "crashed"
        except CostAllocError as error:
            # A refusal the caller is told about (e.g. another live run holds the project's lease).
            actor.outcome = f"refused: {error}"
        except BaseException as error:  # noqa: BLE001 - whatever a run raises is a finding
            actor.outcome = f"raised {type(error).__name__}: {error}"
            actor.error = "".join(traceback.format_exception(error))
        finally:
            with self._cond:
                actor.finished = True
                actor.open_transactions.clear()
                if self._turn is actor:
                    self._turn = None
                self._note(f"{actor.name}: finished, {actor.outcome}")
                self._cond.notify_all()

    def run(
        self, actors: Sequence[Actor], body: Callable[[Actor], str], tick: Callable[[random.Random], float]
    ) -> None:
        threads = [
            threading.Thread(target=self._actor_thread, args=(actor, body), name=f"sim-{actor.name}", daemon=True)
            for actor in actors
        ]
        for thread in threads:
            thread.start()
        last: Actor | None = None
        try:
            while True:
                with self._cond:
                    settled = self._cond.wait_for(
                        lambda: self._turn is None and all(a.parked or a.finished for a in actors),
                        timeout=self._timeout,
                    )
                    if not settled:
                        stuck = [a.name for a in actors if not (a.parked or a.finished)]
                        raise HarnessError(f"actors {stuck} did not reach a switch point within {self._timeout:.0f}s")
                    ready = [a for a in actors if a.parked]
                    if not ready:
                        break
                    if last in ready and self._rng.random() < self._stickiness:
                        chosen = last
                    else:
                        chosen = self._rng.choice(ready)
                    self._clock.advance(tick(self._rng))
                    self.decisions += 1
                    self._note(f"{chosen.name}: {self._pending.get(chosen.index, '?')}")
                    self._turn = last = chosen
                    self._cond.notify_all()
        except BaseException:
            with self._cond:
                self._aborted = True
                self._cond.notify_all()
            raise
        finally:
            for thread in threads:
                thread.join(timeout=self._timeout)
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise HarnessError(f"actor threads {alive} did not end")
        if self.foreign_threads:
            raise HarnessError(
                f"switch points reached from threads other than the actors': {sorted(self.foreign_threads)[:5]}"
            )


# --- the generator --------------------------------------------------------------------------------

PROJECTS = (10, 20, 30, 40)
ALLOCATIONS = ("alpha", "beta", "gamma")
# An empty project whose assignments create the allocations once per environment.
HOLDER_PROJECT = 9
DEFAULT, EXTERNAL = "default", "external"


@dataclass
class ObjectSpec:
    index: int
    place: str  # DEFAULT, an allocation's name, or EXTERNAL
    key: str
    body: bytes
    # Uploaded in parts: its ETag is not its MD5.
    multipart: bool = False


@dataclass
class HandleSpec:
    id: int
    obj: int | None  # None: a row with a NULL key and no object
    place: str
    owners: tuple[int, ...]  # projects with a file entity (a revision) on this handle
    preview: int | None = None  # files.preview_id
    status: str = FileStatus.AVAILABLE.value
    is_preview: bool = False
    odd: str | None = None  # "null-size", "null-md5", "lying-size", "null-key"


@dataclass
class EntitySpec:
    id: int
    project: int
    versions: tuple[int, ...]  # handle ids of revisions 1..n


@dataclass
class RepoSpec:
    projects: tuple[int, ...]
    allocations: tuple[str, ...]
    initial: dict[int, str | None]
    objects: list[ObjectSpec]
    handles: list[HandleSpec]
    entities: list[EntitySpec]
    # Places (DEFAULT, allocations) whose bucket has versioning on in this schedule: their archives
    # are DeleteObjects; the others' versioning is suspended, and their archives are copies.
    versioned: frozenset[str] = frozenset()

    def handle(self, handle_id: int) -> HandleSpec:
        return next(h for h in self.handles if h.id == handle_id)

    def movable_kind(self, handle: HandleSpec) -> bool:
        """An AVAILABLE handle of managed storage with a key and honest metadata: writers may change it."""
        return (
            handle.obj is not None
            and handle.place != EXTERNAL
            and handle.status == FileStatus.AVAILABLE.value
            and handle.odd is None
        )

    def exclusive(self, handle: HandleSpec) -> bool:
        """No other handle uses its key, in any bucket: rewriting the bytes at the key hurts nobody."""
        if not self.movable_kind(handle):
            return False
        key = self.objects[handle.obj].key  # type: ignore[index]
        sharing = [h for h in self.handles if h.obj is not None and self.objects[h.obj].key == key]
        return len(sharing) == 1


class _RepoBuilder:
    def __init__(self, rng: random.Random, projects: tuple[int, ...], allocations: tuple[str, ...]) -> None:
        self.rng = rng
        self.projects = projects
        self.allocations = allocations
        self.objects: list[ObjectSpec] = []
        self.handles: list[HandleSpec] = []
        self.entities: list[EntitySpec] = []
        self._handle_ids = itertools.count(100)
        self._entity_ids = itertools.count(1000)

    def key(self) -> str:
        # Synapse's layout: <uploader>/<uuid>/<name>.
        return f"{self.rng.randint(1, 9)}/{self.rng.getrandbits(40):010x}/file{len(self.objects)}.bin"

    def body(self, kind: str = "small") -> bytes:
        if kind == "zero":
            return b""
        if kind == "large":
            return self.rng.randbytes(self.rng.randint(MULTIPART_THRESHOLD + 1, 5 * PART_SIZE + 100))
        return self.rng.randbytes(self.rng.randint(1, 400))

    def place(self) -> str:
        return DEFAULT if self.rng.random() < 0.65 else self.rng.choice(self.allocations)

    def obj(
        self, place: str | None = None, key: str | None = None, body: bytes | None = None, multipart: bool = False
    ) -> int:
        spec = ObjectSpec(
            len(self.objects),
            place or self.place(),
            key or self.key(),
            self.body() if body is None else body,
            multipart,
        )
        self.objects.append(spec)
        return spec.index

    def handle(self, obj: int | None, owners: tuple[int, ...] | None = None, place: str = DEFAULT, **extra: Any) -> int:
        owners = (self.rng.choice(self.projects),) if owners is None else owners
        spec = HandleSpec(
            next(self._handle_ids), obj, self.objects[obj].place if obj is not None else place, owners, **extra
        )
        self.handles.append(spec)
        for project in owners:
            self.entities.append(EntitySpec(next(self._entity_ids), project, (spec.id,)))
        return spec.id

    def versions(self) -> None:
        project = self.rng.choice(self.projects)
        ids = [self.handle(self.obj(), owners=()) for _ in range(2)]
        self.entities.append(EntitySpec(next(self._entity_ids), project, tuple(ids)))

    def set_preview(self, owner: int, preview: int) -> None:
        next(h for h in self.handles if h.id == owner).preview = preview


def _feature_shared_object(b: _RepoBuilder) -> None:
    # Several handles, maybe of two projects, on one object.
    shared = b.obj()
    for _ in range(b.rng.randint(2, 3)):
        b.handle(shared)


def _feature_shared_handle(b: _RepoBuilder) -> None:
    # One handle that file entities of two projects reference.
    b.handle(b.obj(), owners=tuple(b.rng.sample(b.projects, 2)))


def _feature_same_key_other_bytes(b: _RepoBuilder) -> None:
    # One key in two managed buckets, different bytes, each with its handle.
    key = b.key()
    for place in b.rng.sample([DEFAULT, *b.allocations], 2):
        b.handle(b.obj(place=place, key=key))


def _feature_cross_preview(b: _RepoBuilder) -> None:
    # A project's file whose preview is another project's own file.
    owner_project, preview_project = b.rng.sample(b.projects, 2)
    preview = b.handle(b.obj(), owners=(preview_project,))
    b.set_preview(b.handle(b.obj(), owners=(owner_project,)), preview)


def _feature_own_preview(b: _RepoBuilder) -> None:
    owner = b.handle(b.obj())
    b.set_preview(owner, b.handle(b.obj(), owners=(), is_preview=True))


def _feature_zero_byte(b: _RepoBuilder) -> None:
    b.handle(b.obj(body=b""))


def _feature_large(b: _RepoBuilder) -> None:
    b.handle(b.obj(body=b.body("large")))


def _feature_multipart_source(b: _RepoBuilder) -> None:
    b.handle(b.obj(body=b.body("large"), multipart=True))


def _feature_odd(kind: str) -> Callable[[_RepoBuilder], None]:
    def add(b: _RepoBuilder) -> None:
        if kind == "null-key":
            b.handle(None, place=b.place(), odd=kind)
        else:
            b.handle(b.obj(body=b.body(b.rng.choice(("small", "small", "large")))), odd=kind)

    return add


def _feature_external(b: _RepoBuilder) -> None:
    b.handle(b.obj(place=EXTERNAL))


def _feature_unlinked(b: _RepoBuilder) -> None:
    managed = [o.index for o in b.objects if o.place != EXTERNAL]
    # Either on an object of an AVAILABLE handle (it must not keep it from being archived) or alone.
    obj = b.rng.choice(managed) if managed and b.rng.random() < 0.5 else b.obj()
    b.handle(obj, status=FileStatus.UNLINKED.value)


FEATURES: tuple[tuple[Callable[[_RepoBuilder], None], float], ...] = (
    (_feature_shared_object, 0.6),
    (_feature_shared_handle, 0.4),
    (_feature_same_key_other_bytes, 0.5),
    (_feature_cross_preview, 0.4),
    (_feature_own_preview, 0.3),
    (_RepoBuilder.versions, 0.3),
    (_feature_zero_byte, 0.3),
    (_feature_large, 0.5),
    (_feature_multipart_source, 0.25),
    (_feature_odd("null-size"), 0.2),
    (_feature_odd("null-md5"), 0.2),
    (_feature_odd("lying-size"), 0.2),
    (_feature_odd("null-key"), 0.15),
    (_feature_external, 0.3),
    (_feature_unlinked, 0.3),
)


def generate_repository(rng: random.Random) -> RepoSpec:
    projects = PROJECTS[: rng.randint(2, len(PROJECTS))]
    allocations = ALLOCATIONS[: rng.randint(2, len(ALLOCATIONS))]
    initial = {p: (rng.choice(allocations) if rng.random() < 0.6 else None) for p in projects}
    builder = _RepoBuilder(rng, projects, allocations)
    # Mostly small repositories (the interleavings matter, not the volume), sometimes 20 handles.
    budget = round(rng.triangular(5, 20, 7))
    features = list(FEATURES)
    rng.shuffle(features)
    for feature, probability in features:
        if len(builder.handles) < budget and rng.random() < probability:
            feature(builder)
    while len(builder.handles) < 5:
        builder.handle(builder.obj())
    versioned = frozenset(place for place in (DEFAULT, *ALLOCATIONS) if rng.random() < 0.5)
    return RepoSpec(projects, allocations, initial, builder.objects, builder.handles, builder.entities, versioned)


@dataclass(frozen=True)
class ActorPlan:
    name: str
    kind: str  # "admin", "relocate", "resume", "writer", "check"
    project: int | None = None
    ops: tuple[tuple[Any, ...], ...] = ()
    # The actor dies at this step (1 = its first switch point after its idle turns).
    crash_at: int | None = None
    # Turns the actor waits before its first step: actors start at different times.
    delay: int = 0

    def describe(self) -> str:
        parts = [self.name]
        if self.ops:
            parts.append("; ".join(_describe_op(op) for op in self.ops))
        if self.crash_at is not None:
            parts.append(f"crashes at step {self.crash_at}")
        if self.delay:
            parts.append(f"starts after {self.delay} idle turns")
        return ", ".join(parts)


def _describe_op(op: tuple[Any, ...]) -> str:
    return " ".join(
        str(part) if not isinstance(part, bytes) else f"<{len(part)} bytes md5 {md5(part)[:8]}>" for part in op
    )


def _pick(rng: random.Random, preferred: Sequence[Any], others: Sequence[Any]) -> Any:
    """Mostly one of `preferred` (where the races are), sometimes any of `others`."""
    return rng.choice(preferred) if preferred and rng.random() < 0.7 else rng.choice(others)


def generate_actors(rng: random.Random, repo: RepoSpec) -> tuple[ActorPlan, ...]:
    owned = sorted({e.project for e in repo.entities}) or list(repo.projects)
    runs: list[ActorPlan] = []
    for number in range(1, rng.randint(1, 3) + 1):
        project = rng.choice(owned)
        twins = 2 if rng.random() < 0.35 else 1  # two runs of one project at once
        for twin in range(twins):
            crash = rng.randint(1, 60) if rng.random() < 0.35 else None
            name = f"run{number}{'ab'[twin] if twins == 2 else ''}/p{project}"
            runs.append(ActorPlan(name, "relocate", project, crash_at=crash, delay=rng.randint(0, 25)))
    relocated = sorted({plan.project for plan in runs if plan.project is not None})
    plans: list[ActorPlan] = []
    if rng.random() < 0.85:
        ops: list[tuple[Any, ...]] = []
        for _ in range(rng.randint(1, 3)):
            project = _pick(rng, relocated, owned)
            if rng.random() < 0.4:
                ops.append(("unassign", project))
            else:
                ops.append(("assign", project, rng.choice(repo.allocations)))
        plans.append(ActorPlan("admin", "admin", ops=tuple(ops), delay=rng.randint(0, 8)))
    plans.extend(runs)
    if rng.random() < 0.4:
        resumed: int | None = rng.choice(owned) if rng.random() < 0.6 else None
        crash = rng.randint(1, 30) if rng.random() < 0.2 else None
        plans.append(
            ActorPlan(
                f"resume/{'all' if resumed is None else f'p{resumed}'}",
                "resume",
                resumed,
                crash_at=crash,
                delay=rng.randint(5, 40),
            )
        )
    writable = [h for h in repo.handles if repo.movable_kind(h)]
    moving = [h for h in writable if any(e.project in relocated and h.id in e.versions for e in repo.entities)]
    if writable and rng.random() < 0.6:
        ops = []
        for _ in range(rng.randint(1, 3)):
            handle = _pick(rng, moving, writable)
            exclusive = repo.exclusive(handle)
            choice = rng.choice(("touch", "rekey", "rewrite", "upload") if exclusive else ("touch", "rekey", "upload"))
            if choice == "touch":
                ops.append(("touch", handle.id))
            elif choice == "rekey":
                ops.append(("rekey", handle.id, _writer_body(rng, repo, handle), f"{rng.getrandbits(40):010x}"))
            elif choice == "rewrite":
                ops.append(("rewrite", handle.id, _writer_body(rng, repo, handle)))
            else:
                ops.append(
                    (
                        "upload",
                        rng.choice(owned),
                        rng.randbytes(rng.randint(0, 3 * PART_SIZE)),
                        f"{rng.getrandbits(40):010x}",
                    )
                )
        plans.append(ActorPlan("writer", "writer", ops=tuple(ops), delay=rng.randint(0, 30)))
    if rng.random() < 0.3:
        plans.append(ActorPlan("check", "check", delay=rng.randint(10, 60)))
    return tuple(plans)


def _writer_body(rng: random.Random, repo: RepoSpec, handle: HandleSpec) -> bytes:
    # Half the time the new bytes have the old size: only the MD5 tells them apart.
    size = len(repo.objects[handle.obj].body) if rng.random() < 0.5 else rng.randint(1, 3 * PART_SIZE)  # type: ignore[index]
    return rng.randbytes(size)


def tick(rng: random.Random) -> float:
    """Simulated seconds between two turns; now and then a long pause, past a lease or the grace period."""
    roll = rng.random()
    if roll < 0.01:
        return LEASE_SECONDS + 1
    if roll < 0.02:
        return GRACE_SECONDS + 1
    return rng.choice((0, 0, 1, 1, 2, 3))


# --- the world: environment, repository builder, model --------------------------------------------


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def etags_of(body: bytes) -> set[str]:
    """The ETags an object with these bytes can have: its MD5, or a multipart ETag in PART_SIZE parts."""
    digests = b"".join(hashlib.md5(body[i : i + PART_SIZE]).digest() for i in range(0, len(body), PART_SIZE))
    parts = max(1, -(-len(body) // PART_SIZE))
    return {md5(body), f"{hashlib.md5(digests).hexdigest()}-{parts}"}


def _alias_url(url: str, number: int) -> str:
    """Another URL of the same database, so engine_for() gives each actor an engine (and pool) of its
    own: production code that opens engine_for(settings.repository_url) then uses the actor's."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        # sqlite3 takes query options of its own only; a path with "./" steps is the same file.
        return f"sqlite:///{path.parent}/{'./' * number}{path.name}"
    # A connection option each driver takes and ignores otherwise: the name the server shows.
    option = "program_name" if parsed.get_backend_name() in ("mysql", "mariadb") else "application_name"
    return parsed.update_query_dict({option: f"costalloc-sim-{number}"}).render_as_string(hide_password=False)


def _transaction_owner() -> str:
    """The function (and line) that opened the transaction: the first caller outside SQLAlchemy."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and (
        "sqlalchemy" in frame.f_code.co_filename
        or frame.f_code.co_filename.endswith("contextlib.py")
        or frame.f_code.co_name in ("_begin", "_transaction", "_connected")
    ):
        frame = frame.f_back
    if frame is None:
        return "transaction"
    return f"{Path(frame.f_code.co_filename).stem}.{frame.f_code.co_name}:{frame.f_lineno}"


class Slot:
    """One actor's Engine and S3 client. Reused by every schedule of an environment (creating them
    costs more than a schedule's work) and bound, during a schedule, to that schedule's actor."""

    def __init__(self, number: int, url: str, endpoint: str) -> None:
        self.url = _alias_url(url, number)
        self.engine = engine_for(self.url)
        self.s3 = make_s3_client(endpoint, "us-east-1", max_pool_connections=4)
        self.actor: Actor | None = None
        self.world: World | None = None
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)
        self.s3.meta.events.register("provide-client-params.s3", self._params)
        self.s3.meta.events.register("before-call.s3", self._call)

    def _begin(self, conn: Connection) -> None:
        actor, world = self.actor, self.world
        if actor is not None and world is not None:
            world.scheduler.switch(actor, f"db {_transaction_owner()}")
            actor.open_transactions.add(conn)

    def _end(self, conn: Connection) -> None:
        if self.actor is not None:
            self.actor.open_transactions.discard(conn)

    def _params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        actor, world = self.actor, self.world
        if actor is not None and world is not None:
            context["costalloc_sim_label"] = world.describe_call(actor, model.name, params)
            if model.name == "CopyObject" and ("IfNoneMatch" in params or "IfMatch" in params):
                context["costalloc_sim_condition"] = params
            if model.name == "DeleteObjects":
                context["costalloc_sim_deletes"] = params
        # a value would replace the call's parameters

    def _call(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        actor, world = self.actor, self.world
        if actor is None or world is None:
            return None
        world.scheduler.switch(actor, context.get("costalloc_sim_label", model.name))
        deletes = context.get("costalloc_sim_deletes")
        if deletes is not None:
            return _served_deletes(world.env.s3, deletes)
        condition = context.get("costalloc_sim_condition")
        return None if condition is None else _refused_copy(world.env.s3, condition)


def _refused_copy(s3: Any, params: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """S3's answer to a conditional CopyObject whose condition fails (412), else None (the request
    goes to moto). S3 honours If-None-Match and If-Match on CopyObject; moto ignores them there
    (it honours them on PutObject and CompleteMultipartUpload), so the harness applies them, as
    the request is served: one actor runs at a time, so the check and the write are one step. The
    schedules thus test the protocol against S3's documented behaviour; tests/faults covers what
    the mover does where a server ignores the condition."""
    try:
        found: str | None = s3.head_object(Bucket=params["Bucket"], Key=params["Key"])["ETag"]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        found = None
    wanted = params.get("IfMatch")
    refused = (params.get("IfNoneMatch") == "*" and found is not None) or (wanted is not None and found != wanted)
    if not refused:
        return None
    error = {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions you specified did not hold"}
    return SimpleNamespace(status_code=412, headers={}), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 412}}


def _served_deletes(s3: Any, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """S3's answer to a DeleteObjects, served by the harness: S3 deletes each object only when its
    ETag (if given) is the current one's, and reports the others as PreconditionFailed; moto ignores
    the ETags. One actor runs at a time, so the checks and the deletes are one step."""
    deleted, errors = [], []
    for item in params["Delete"]["Objects"]:
        key = item["Key"]
        try:
            found: str | None = s3.head_object(Bucket=params["Bucket"], Key=key)["ETag"]
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
            found = None
        if "ETag" in item and found != item["ETag"]:
            code = "PreconditionFailed" if found is not None else "NoSuchKey"
            errors.append({"Key": key, "Code": code, "Message": "the condition did not hold"})
            continue
        answer = s3.delete_object(Bucket=params["Bucket"], Key=key)
        deleted.append({"Key": key, "DeleteMarker": answer.get("DeleteMarker", False)})
    parsed = {"Deleted": deleted, "Errors": errors, "ResponseMetadata": {"HTTPStatusCode": 200}}
    return SimpleNamespace(status_code=200, headers={}), parsed


class Environment:
    """One backend's database and moto's server, reused by every schedule of a test: a fresh
    repository is a cleanup of the tables and buckets, not a new database. The allocations (and
    their provisioned buckets) are made once and kept: assigning is what the schedules exercise."""

    def __init__(self, base: Settings, endpoint: str) -> None:
        self.settings = simulation_settings(base)
        self.endpoint = endpoint
        self.backend = make_url(self.settings.repository_url).get_backend_name()
        bootstrap(self.settings)
        self.engine = engine_for(self.settings.repository_url)
        # The harness's own view of S3 (setup and oracle): no switch points, never faulted.
        self.s3 = make_s3_client(endpoint, "us-east-1", max_pool_connections=16)
        self.external_bucket = f"{self.settings.stack}-sim-external"
        self.s3.create_bucket(Bucket=self.external_bucket)
        self._clean_tables()
        self._insert_node(HOLDER_PROJECT, NodeType.PROJECT, None, HOLDER_PROJECT)
        self.allocation_buckets = {
            name: provision_allocation(self.settings, self.engine, self.s3, HOLDER_PROJECT, name)
            for name in ALLOCATIONS
        }
        self._slots: list[Slot] = []
        self.buckets = {
            DEFAULT: self.settings.default_bucket,
            EXTERNAL: self.external_bucket,
            **self.allocation_buckets,
        }
        with self.engine.connect() as conn:
            self.locations: dict[str, int] = dict(
                conn.execute(select(storage_location.c.bucket, storage_location.c.id)).all()
            )

    def _insert_node(self, entity_id: int, node_type: NodeType, parent: int | None, project: int) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                insert(node).values(
                    id=entity_id,
                    name=f"{node_type.value.lower()} {entity_id}",
                    node_type=node_type.value,
                    parent_id=parent,
                    project_id=project,
                    etag=new_etag(),
                    created_on=now,
                    created_by=1,
                    modified_on=now,
                )
            )

    def _clean_tables(self) -> None:
        """Every repository and replica table but the team, its tokens and the allocations with their locations."""
        keep = {"principal", "team", "team_member", "api_token", "cost_allocation", "storage_location"}
        present = set(sql_inspect(self.engine).get_table_names())
        tables = [
            t.name
            for t in [*reversed(repository_schema.metadata.sorted_tables), *replica_schema.metadata.sorted_tables]
            if t.name in present and t.name not in keep
        ]
        with self.engine.begin() as conn:
            if self.backend == "postgresql":
                # A lock left by a stuck actor must fail the harness, not hang it.
                conn.execute(text("SET LOCAL lock_timeout = '20s'"))
                # RESTART IDENTITY: a replayed seed gets the same ledger ids as the first run.
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
            elif self.backend in ("mysql", "mariadb"):
                conn.execute(text("SET SESSION innodb_lock_wait_timeout = 20"))
                # TRUNCATE restarts AUTO_INCREMENT too (and commits at once, which a cleanup may).
                for name in tables:
                    conn.execute(text(f"TRUNCATE TABLE {name}"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))

    def _empty_buckets(self) -> None:
        """Every version and delete marker of every bucket: a versioned bucket keeps them all."""
        for bucket in self.buckets.values():
            listed = self.s3.list_object_versions(Bucket=bucket)
            versions = [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
            if versions:
                self.s3.delete_objects(
                    Bucket=bucket,
                    Delete={
                        "Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions],
                        "Quiet": True,
                    },
                )

    def _set_versioning(self, versioned: frozenset[str]) -> None:
        for place, bucket in self.buckets.items():
            if place != EXTERNAL:
                status = "Enabled" if place in versioned else "Suspended"
                self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})

    def slot(self, number: int) -> Slot:
        """The number-th actor's engine and client, made the first time a schedule needs them."""
        while len(self._slots) <= number:
            self._slots.append(Slot(len(self._slots) + 1, self.settings.repository_url, self.endpoint))
        return self._slots[number]

    def reset(self, versioned: frozenset[str]) -> None:
        self._clean_tables()
        self._empty_buckets()
        self._set_versioning(versioned)

    def close(self) -> None:
        from costalloc_pipeline.db import dispose_engine

        for slot in self._slots:
            slot.actor = slot.world = None
            dispose_engine(slot.url)


@dataclass
class Tracked:
    """An object whose bytes must survive: at the start, or written by a writer for a handle."""

    bucket: str
    key: str
    body: bytes
    # Handles whose content it is; when writers gave every one of them new content, it may go.
    holders: set[int]


@dataclass
class Model:
    """What the test expects, kept apart from the system under test."""

    # The bytes each AVAILABLE handle of managed storage (with a key) must read.
    expected: dict[int, bytes] = field(default_factory=dict)
    odd: dict[int, str] = field(default_factory=dict)
    tracked: list[Tracked] = field(default_factory=list)
    # External objects: (bucket, key, etag, size); nothing may touch them (I5).
    external: list[tuple[str, str, str, int]] = field(default_factory=list)
    # Project of each handle a writer uploaded.
    uploaded: dict[int, int] = field(default_factory=dict)

    def content_changed(self, handle_id: int, bucket: str, key: str, body: bytes) -> None:
        for tracked in self.tracked:
            tracked.holders.discard(handle_id)
        self.expected[handle_id] = body
        self.tracked.append(Tracked(bucket, key, body, {handle_id}))


@dataclass
class World:
    env: Environment
    seed: int
    spec: RepoSpec
    plans: tuple[ActorPlan, ...]
    clock: SimClock
    scheduler: Scheduler
    model: Model = field(default_factory=Model)
    findings: list[str] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(900))

    def bucket_name(self, place: str) -> str:
        return self.env.buckets[place]

    def alias(self, bucket: str | None) -> str:
        for place, name in self.env.buckets.items():
            if name == bucket:
                return place
        return str(bucket)

    def describe_call(self, actor: Actor, operation: str, params: dict[str, Any]) -> str:
        """The trace's label of an S3 call; an actor naming the external bucket is an I5 finding."""
        bucket = params.get("Bucket")
        source = params.get("CopySource")
        source_bucket = source.get("Bucket") if isinstance(source, dict) else None
        if self.env.external_bucket in (bucket, source_bucket):
            self.findings.append(f"I5: {actor.name} called {operation} on the external bucket")
        label = f"s3 {operation} {self.alias(bucket)}/{params.get('Key', '')}"
        if isinstance(source, dict):
            label += f" from {self.alias(source_bucket)}"
        return label

    def next_handle_id(self) -> int:
        return next(self._ids)


def _put(s3: Any, bucket: str, key: str, body: bytes, multipart: bool) -> None:
    if not multipart:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), PART_SIZE), 1):
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body[start : start + PART_SIZE]
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})


def _file_row(world: World, handle: HandleSpec, bucket: str | None, key: str | None, body: bytes) -> dict[str, Any]:
    """The handle's row as an upload records it, then made odd as the spec says."""
    row = s3_file_row(handle.id, bucket, key, body, storage_location_id=world.env.locations.get(bucket or ""))
    if handle.odd == "null-size":
        row["content_size"] = None
    elif handle.odd == "null-md5":
        row["content_md5"] = None
    elif handle.odd == "lying-size":
        row["content_size"] = len(body) + 1 + handle.id % 7
    row.update(preview_id=handle.preview, is_preview=handle.is_preview, status=handle.status)
    return row


def build_repository(world: World) -> None:
    """The generated repository in the database and in S3, and the model's starting point."""
    env, spec, model = world.env, world.spec, world.model
    env.reset(spec.versioned)
    now = utcnow()
    rows = []
    for handle in spec.handles:
        if handle.obj is None:
            rows.append(_file_row(world, handle, world.bucket_name(handle.place), None, b"never uploaded"))
            model.odd[handle.id] = "null-key"
            continue
        obj = spec.objects[handle.obj]
        rows.append(_file_row(world, handle, world.bucket_name(obj.place), obj.key, obj.body))
        if handle.odd:
            model.odd[handle.id] = handle.odd
        if obj.place != EXTERNAL and handle.status == FileStatus.AVAILABLE.value:
            model.expected[handle.id] = obj.body
    with env.engine.begin() as conn:
        conn.execute(insert(files), rows)
        projects = [
            {"id": p, "name": f"project {p}", "node_type": NodeType.PROJECT.value, "parent_id": None, "project_id": p}
            for p in spec.projects
        ]
        entities = [
            {
                "id": e.id,
                "name": f"file {e.id}",
                "node_type": NodeType.FILE.value,
                "parent_id": e.project,
                "project_id": e.project,
            }
            for e in spec.entities
        ]
        conn.execute(
            insert(node),
            [
                {
                    **n,
                    "current_version": None,
                    "etag": new_etag(),
                    "created_on": now,
                    "created_by": 1,
                    "modified_on": now,
                }
                for n in projects + entities
            ],
        )
        revisions = [
            {"owner_node_id": e.id, "number": n, "file_handle_id": h, "modified_on": now}
            for e in spec.entities
            for n, h in enumerate(e.versions, 1)
        ]
        if revisions:
            conn.execute(insert(node_revision), revisions)
    for obj in spec.objects:
        bucket = world.bucket_name(obj.place)
        _put(env.s3, bucket, obj.key, obj.body, obj.multipart)
        holders = {h.id for h in spec.handles if h.obj == obj.index and h.id in model.expected}
        if obj.place == EXTERNAL:
            found = env.s3.head_object(Bucket=bucket, Key=obj.key)
            model.external.append((bucket, obj.key, found["ETag"].strip('"'), found["ContentLength"]))
        elif holders:
            model.tracked.append(Tracked(bucket, obj.key, obj.body, holders))
    for project, allocation in spec.initial.items():
        if allocation is not None:
            assign(env.settings, env.engine, env.s3, project, allocation)


# --- the actors -----------------------------------------------------------------------------------


def _act(world: World, actor: Actor) -> str:
    plan = actor.plan
    for _ in range(plan.delay):
        world.scheduler.switch(actor, "idle", counts=False)
    if plan.kind == "relocate":
        assert plan.project is not None
        return run_relocation(actor.settings, actor.slot.engine, actor.slot.s3, plan.project, actor.run_id, world.clock)
    if plan.kind == "resume":
        return run_resume(actor.settings, actor.slot.s3, plan.project, world.clock)
    if plan.kind == "check":
        return f"removed {finish_removals(actor.slot.engine, world.spec.projects)}"
    if plan.kind == "admin":
        return "; ".join([_admin_op(world, actor, op) for op in plan.ops])
    if plan.kind == "writer":
        return "; ".join([_writer_op(world, actor, op) for op in plan.ops])
    raise ValueError(f"unknown actor kind {plan.kind}")


def _admin_op(world: World, actor: Actor, op: tuple[Any, ...]) -> str:
    try:
        if op[0] == "assign":
            assign(actor.settings, actor.slot.engine, actor.slot.s3, op[1], op[2])
        else:
            unassign(actor.slot.engine, op[1])
    except CostAllocError as error:
        return f"{_describe_op(op)}: refused ({error})"
    return f"{_describe_op(op)}: done"


def _writer_op(world: World, actor: Actor, op: tuple[Any, ...]) -> str:
    """Another writer, as Synapse's would be: read the handle, upload, then update the row only if
    its etag is still the one read (else read again). Never a blind write over a concurrent change."""
    engine, s3 = actor.slot.engine, actor.slot.s3
    if op[0] == "upload":
        return _upload(world, actor, op[1], op[2], op[3])
    kind, handle_id = op[0], op[1]
    for attempt in range(3):
        with engine.connect() as conn:
            row = conn.execute(
                select(files.c.bucket_name, files.c.key, files.c.etag, files.c.status).where(files.c.id == handle_id)
            ).one()
        if row.status != FileStatus.AVAILABLE.value or row.bucket_name not in world.env.locations:
            return f"{_describe_op(op)}: not an AVAILABLE managed handle now, left alone"
        values: dict[str, Any] = {"etag": new_etag(), "updated_on": utcnow()}
        place = (row.bucket_name, row.key)
        if kind == "touch":
            values["name"] = f"renamed {attempt}.bin"
        else:
            body: bytes = op[2]
            if kind == "rekey":
                place = (row.bucket_name, f"{handle_id % 9 + 1}/{op[3]}{attempt}/new-version.bin")
            s3.put_object(Bucket=place[0], Key=place[1], Body=body)
            values.update(
                bucket_name=place[0],
                key=place[1],
                content_size=len(body),
                content_md5=md5(body),
                storage_location_id=world.env.locations[place[0]],
            )
        with engine.begin() as conn:
            changed = conn.execute(
                update(files).where(files.c.id == handle_id, files.c.etag == row.etag).values(**values)
            ).rowcount
        if changed == 1:
            if kind != "touch":
                world.model.content_changed(handle_id, place[0], place[1], op[2])
            return f"{_describe_op(op)}: done at {world.alias(place[0])}/{place[1]}"
    return f"{_describe_op(op)}: the handle kept changing, gave up"


def _upload(world: World, actor: Actor, project: int, body: bytes, token: str) -> str:
    engine, s3 = actor.slot.engine, actor.slot.s3
    bucket, location = upload_destination(engine, project)
    handle_id = world.next_handle_id()
    key = f"{project % 9 + 1}/{token}/upload{handle_id}.bin"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    now = utcnow()
    entity_id = handle_id + 10_000
    row = s3_file_row(
        handle_id, bucket, key, body, name=f"upload{handle_id}.bin", storage_location_id=location, now=now
    )
    with engine.begin() as conn:
        conn.execute(insert(files).values(**row))
        conn.execute(
            insert(node).values(
                id=entity_id,
                name=f"upload {handle_id}",
                node_type=NodeType.FILE.value,
                parent_id=project,
                project_id=project,
                etag=new_etag(),
                created_on=now,
                created_by=1,
                modified_on=now,
            )
        )
        conn.execute(
            insert(node_revision).values(owner_node_id=entity_id, number=1, file_handle_id=handle_id, modified_on=now)
        )
    world.model.uploaded[handle_id] = project
    world.model.content_changed(handle_id, bucket, key, body)
    return f"upload p{project}: handle {handle_id} at {world.alias(bucket)}/{key}"


# --- settling -------------------------------------------------------------------------------------


def _fingerprint(engine: Engine) -> tuple[Any, ...]:
    """What a further round could still change: handles, associations, half-done ledger rows."""
    with engine.connect() as conn:
        handles = tuple(
            conn.execute(select(files.c.id, files.c.bucket_name, files.c.key, files.c.status).order_by(files.c.id))
        )
        associations = tuple(
            conn.execute(
                select(
                    cost_allocation_project.c.project_id,
                    cost_allocation_project.c.cost_allocation_id,
                    cost_allocation_project.c.state,
                ).order_by(cost_allocation_project.c.project_id)
            )
        )
        open_rows = conn.execute(
            select(move_ledger.c.state, move_ledger.c.id)
            .where(move_ledger.c.state.in_(("STARTED", "COPIED", "REPOINTED")))
            .order_by(move_ledger.c.id)
        ).all()
    return handles, associations, tuple(open_rows)


def _one_line(message: str, limit: int = 240) -> str:
    """The first line of an error, shortened: SQL errors carry the statement and its parameters."""
    line = message.strip().splitlines()[0] if message.strip() else message
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _open_moves(engine: Engine, project_id: int | None = None) -> int:
    """Ledger rows of moves not finished (of the project, or of all)."""
    query = (
        select(func.count()).select_from(move_ledger).where(move_ledger.c.state.in_(("STARTED", "COPIED", "REPOINTED")))
    )
    if project_id is not None:
        query = query.where(move_ledger.c.project_id == project_id)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def settle(world: World) -> None:
    """No more faults: what a deployment runs, round after round, until nothing changes (the replica,
    a run of each project with something to do, the check, the resume). The clock jumps past leases
    and the grace period before each resume: dead runs' leases expire, due archives happen."""
    env, settings = world.env, world.env.settings

    def step(name: str, action: Callable[[], Any]) -> Any:
        try:
            outcome = action()
        except CostAllocError as error:
            outcome = f"refused: {error}"
        except Exception as error:  # noqa: BLE001 - whatever raises while settling is a finding
            world.findings.append(
                f"settling round {number}: {name} raised {type(error).__name__}: {_one_line(str(error))}"
            )
            return None
        if isinstance(outcome, list) and name.startswith("out of place"):
            shown: Any = f"{len(outcome)} candidates {[c.file_handle_id for c in outcome]}"
        else:
            shown = "done" if outcome is None else outcome
        world.scheduler.trace.append(f"      settle {number}: {name}: {shown}")
        return outcome

    def finish_interrupted() -> None:
        # Past every lease, claim hold and grace period: dead runs' leases are over and their claims
        # stale (a claim holds one lease period past its run's lease), repointed sources are due.
        world.clock.advance(GRACE_SECONDS + 2 * LEASE_SECONDS + 1)
        if _open_moves(env.engine):
            step("resume", lambda: run_resume(settings, env.s3, None, world.clock))

    number = 0
    finish_interrupted()
    previous = _fingerprint(env.engine)
    for number in range(1, SETTLE_ROUNDS + 1):
        step("replica", lambda: refresh_replica(env.engine))
        for project in world.spec.projects:
            candidates = step(f"out of place p{project}", partial(out_of_place, env.engine, project))
            if candidates or (candidates is not None and _open_moves(env.engine, project)):
                run_id = f"settle-{number}-p{project}"
                run = partial(relocate, settings, env.engine, env.s3, project, run_id, world.clock, candidates)
                step(f"run of p{project}", run)
        step("check", lambda: finish_removals(env.engine, world.spec.projects))
        # In the same round, so what the runs repointed is archived before the round is judged.
        finish_interrupted()
        state = _fingerprint(env.engine)
        if state == previous:
            return
        previous, state = state, previous
    # previous: after the last round; state: after the one before.
    before = {row[0]: row[1:] for row in state[0]}
    moving = sorted(
        f"{row[0]} {world.alias(before[row[0]][0])}->{world.alias(row[1])}"
        for row in previous[0]
        if row[0] in before and before[row[0]] != tuple(row[1:])
    )
    world.findings.append(
        f"I6: still changing after {SETTLE_ROUNDS} settling rounds; "
        f"in the last round: {moving or 'ledger or associations'}"
    )


# --- the oracle -----------------------------------------------------------------------------------


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _head_version(s3: Any, bucket: str, key: str, version_id: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            return None
        raise


def _matches(found: dict[str, Any] | None, body: bytes) -> bool:
    return found is not None and found["ContentLength"] == len(body) and found["ETag"].strip('"') in etags_of(body)


def _read(s3: Any, bucket: str, key: str) -> tuple[bytes | None, str]:
    """(bytes, storage class), or (None, why) when the object cannot be read."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
        return answer["Body"].read(), answer.get("StorageClass", "STANDARD")
    except ClientError as error:
        return None, str(error.response.get("Error", {}).get("Code", error))


def _oracle_audit(world: World) -> None:
    """1. The audit finds nothing, but what odd rows had before the schedule began (a recorded size
    that lies, a NULL key: data errors the mover did not make and cannot mend)."""
    found = audit_repository(world.env.engine, world.env.s3, world.env.settings)
    preexisting = {h for h, odd in world.model.odd.items() if odd in ("lying-size", "null-key")}
    for kind, offenders in sorted(found.found.items()):
        excused = kind.startswith(("I1", "unchecked"))
        new = [o for o in offenders if not (excused and o in preexisting)]
        if new or found.counts[kind] > len(offenders):
            world.findings.append(f"audit: {kind}: {found.counts[kind]} (first: {new or offenders})")


def _oracle_read_back(world: World, rows: Sequence[Any]) -> dict[tuple[str, str], bytes]:
    """2. Every AVAILABLE handle in managed storage reads the bytes the model expects, of its recorded
    size and MD5, from a readable storage class. Returns what each handle's object holds."""
    model, s3 = world.model, world.env.s3
    managed = set(world.env.locations)
    live = [
        r
        for r in rows
        if r.status == FileStatus.AVAILABLE.value
        and r.metadata_type == MetadataType.S3.value
        and r.bucket_name in managed
    ]
    for handle_id in model.expected:
        if handle_id not in {r.id for r in live}:
            world.findings.append(f"read-back: handle {handle_id} is no longer an AVAILABLE handle of managed storage")
    readable = [r for r in live if r.key is not None]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda r: _read(s3, r.bucket_name, r.key), readable))
    contents: dict[tuple[str, str], bytes] = {}
    for row, (body, storage_class) in zip(readable, answers, strict=False):
        where = f"handle {row.id} at {world.alias(row.bucket_name)}/{row.key}"
        expected = model.expected.get(row.id)
        odd = model.odd.get(row.id)
        if body is None:
            world.findings.append(f"I1 read-back: {where} cannot be read: {storage_class}")
            continue
        contents[(row.bucket_name, row.key)] = body
        if storage_class in UNREADABLE_CLASSES:
            world.findings.append(f"I2 read-back: {where} is in {storage_class}")
        if expected is None:
            world.findings.append(f"read-back: {where}: a handle the model does not know")
            continue
        if body != expected:
            world.findings.append(
                f"I1 read-back: {where} reads other bytes (md5 {md5(body)}, {len(body)} B; "
                f"expected md5 {md5(expected)}, {len(expected)} B)"
            )
        if odd not in ("lying-size", "null-size") and row.content_size != len(expected):
            world.findings.append(f"read-back: {where} records size {row.content_size}, expected {len(expected)}")
        if odd != "null-md5" and row.content_md5 != md5(expected):
            world.findings.append(f"read-back: {where} records MD5 {row.content_md5}, expected {md5(expected)}")
    for row in live:
        if row.key is None and model.odd.get(row.id) != "null-key":
            world.findings.append(f"read-back: handle {row.id} lost its key")
    return contents


def _archive_heads(s3: Any, archives: Iterable[tuple[str, str, str | None, str | None]]) -> list[dict[str, Any]]:
    """What S3 holds of each archive the ledger records: an archive-class copy at its key, or the
    noncurrent version an archive by DeleteObject left (moto runs no lifecycle rule: STANDARD)."""
    found = []
    for bucket, key, method, version_id in archives:
        if method == "delete":
            answer = _head_version(s3, bucket, key, version_id) if version_id else None
            if answer is not None:
                found.append(answer)
            continue
        answer = _head(s3, bucket, key)
        if answer is not None and answer.get("StorageClass") in ARCHIVE_CLASSES:
            found.append(answer)
    return found


def _oracle_nothing_vanished(world: World, contents: dict[tuple[str, str], bytes]) -> None:
    """3. The bytes of every object that had to be kept still exist: read through an AVAILABLE
    handle, or in an archive the ledger records, or still where they were. An object whose every
    handle was given new content by a writer may go."""
    s3 = world.env.s3
    with world.env.engine.connect() as conn:
        archives = set(
            conn.execute(
                select(
                    move_ledger.c.archive_bucket,
                    move_ledger.c.archive_key,
                    move_ledger.c.archive_method,
                    move_ledger.c.archive_version_id,
                ).where(move_ledger.c.archive_key.is_not(None))
            ).all()
        )
    archived: list[dict[str, Any]] | None = None
    live_bodies = set(contents.values())
    for tracked in world.model.tracked:
        if not tracked.holders or tracked.body in live_bodies:
            continue
        if archived is None:
            # Looked at only when some bytes are not live: usually they all are.
            archived = _archive_heads(s3, archives)
        in_archive = any(_matches(found, tracked.body) for found in archived)
        if in_archive or _matches(_head(s3, tracked.bucket, tracked.key), tracked.body):
            continue
        world.findings.append(
            f"vanished: the bytes of {world.alias(tracked.bucket)}/{tracked.key} "
            f"(md5 {md5(tracked.body)}, handles {sorted(tracked.holders)}) exist nowhere"
        )


def _oracle_convergence(world: World, rows: Sequence[Any]) -> None:
    """4. I6: every handle that can move sits in the bucket all its projects want. Not expected of
    conflicts (projects that want different buckets), of failed odd rows (a size that lies or no key
    can never be verified; other odd rows count as failed once the ledger says a move of them
    failed), nor where the target key holds other bytes (never overwritten)."""
    env = world.env
    with env.engine.connect() as conn:
        failed = set(
            conn.execute(
                select(move_ledger.c.file_handle_id).where(move_ledger.c.state == MoveState.FAILED.value)
            ).scalars()
        )
        active: dict[int, str] = dict(
            conn.execute(
                select(cost_allocation_project.c.project_id, cost_allocation.c.bucket)
                .join(cost_allocation, cost_allocation.c.id == cost_allocation_project.c.cost_allocation_id)
                .where(cost_allocation_project.c.state == AssociationState.ACTIVE.value)
            ).all()
        )
        references = conn.execute(
            select(node_revision.c.file_handle_id, node.c.project_id)
            .join(node, node.c.id == node_revision.c.owner_node_id)
            .where(node.c.node_type == NodeType.FILE.value)
        ).all()
    by_id = {r.id: r for r in rows}
    projects_of: dict[int, set[int]] = {}
    for handle_id, project in references:
        projects_of.setdefault(handle_id, set()).add(project)
        preview = by_id[handle_id].preview_id if handle_id in by_id else None
        if preview is not None:
            projects_of.setdefault(preview, set()).add(project)
    for handle_id, projects in sorted(projects_of.items()):
        row = by_id.get(handle_id)
        expected = world.model.expected.get(handle_id)
        odd = world.model.odd.get(handle_id)
        if row is None or expected is None or row.key is None:
            continue
        if odd in ("lying-size", "null-key") or (odd is not None and handle_id in failed):
            continue
        wanted = {active.get(p, env.settings.default_bucket) for p in projects}
        if len(wanted) != 1 or row.bucket_name in wanted:
            continue
        target = wanted.pop()
        occupant = _head(env.s3, target, row.key)
        if occupant is not None and not _matches(occupant, expected):
            continue
        world.findings.append(
            f"I6 convergence: handle {handle_id} of projects {sorted(projects)} is in {world.alias(row.bucket_name)}, "
            f"its projects want {world.alias(target)}"
        )


def _oracle_external(world: World) -> None:
    """I5: external objects are as they were."""
    for bucket, key, etag, size in world.model.external:
        found = _head(world.env.s3, bucket, key)
        if (
            found is None
            or found["ETag"].strip('"') != etag
            or found["ContentLength"] != size
            or found.get("StorageClass", "STANDARD") != "STANDARD"
        ):
            world.findings.append(f"I5: external object {key} changed")


def check(world: World) -> None:
    for actor in world.actors:
        if actor.error is not None:
            world.findings.append(f"{actor.name} {_one_line(actor.outcome)}")
    _oracle_audit(world)
    with world.env.engine.connect() as conn:
        rows = conn.execute(
            select(
                files.c.id,
                files.c.bucket_name,
                files.c.key,
                files.c.status,
                files.c.metadata_type,
                files.c.content_size,
                files.c.content_md5,
                files.c.preview_id,
            ).order_by(files.c.id)
        ).all()
    contents = _oracle_read_back(world, rows)
    _oracle_nothing_vanished(world, contents)
    _oracle_convergence(world, rows)
    _oracle_external(world)


# --- the driver -----------------------------------------------------------------------------------


@dataclass
class ScheduleResult:
    seed: int
    backend: str
    findings: list[str]
    report: str
    seconds: float
    decisions: int


def describe(world: World) -> str:
    spec, lines = world.spec, []
    lines.append(
        f"repository: projects {list(spec.projects)}, allocations {list(spec.allocations)}, initially "
        + ", ".join(f"p{p}->{a or 'default'}" for p, a in spec.initial.items())
    )
    lines.append(f"  versioned buckets (archives by DeleteObject): {sorted(spec.versioned) or 'none'}")
    for obj in spec.objects:
        lines.append(
            f"  object o{obj.index}: {obj.place}/{obj.key}, {len(obj.body)} B, "
            f"md5 {md5(obj.body)}{' (multipart upload)' if obj.multipart else ''}"
        )
    for h in spec.handles:
        extras = [f"status {h.status}"] if h.status != FileStatus.AVAILABLE.value else []
        extras += [f"odd {h.odd}"] if h.odd else []
        extras += [f"preview {h.preview}"] if h.preview else []
        extras += ["is a preview"] if h.is_preview else []
        target = f"o{h.obj}" if h.obj is not None else f"{h.place}/<NULL key>"
        projects = sorted({e.project for e in spec.entities if h.id in e.versions})
        lines.append(f"  handle {h.id}: {target}, projects {projects} {' '.join(extras)}")
    for e in spec.entities:
        if len(e.versions) > 1:
            lines.append(f"  entity {e.id} of p{e.project}: versions {list(e.versions)}")
    lines.append("actors:")
    for actor in world.actors:
        lines.append(f"  {actor.plan.describe()} -> {actor.outcome}")
    lines.append(f"schedule ({world.scheduler.decisions} turns):")
    lines.extend(f"  {line}" for line in world.scheduler.trace)
    lines.append("end state (handles; ledger rows that failed or were skipped, last first):")
    with world.env.engine.connect() as conn:
        for row in conn.execute(
            select(files.c.id, files.c.bucket_name, files.c.key, files.c.status).order_by(files.c.id)
        ):
            lines.append(f"  handle {row.id}: {world.alias(row.bucket_name)}/{row.key} {row.status}")
        refused = conn.execute(
            select(move_ledger.c.file_handle_id, move_ledger.c.run_id, move_ledger.c.state, move_ledger.c.error)
            .where(move_ledger.c.state.in_((MoveState.FAILED.value, MoveState.SKIPPED.value)))
            .order_by(move_ledger.c.id.desc())
            .limit(30)
        )
        lines.extend(
            f"  ledger: handle {r.file_handle_id} {r.state} in {r.run_id}: {_one_line(r.error or '')}" for r in refused
        )
    return "\n".join(lines)


def bounded(action: Callable[[], Any], timeout: float, what: str) -> Any:
    """`action()` in a thread of its own, given `timeout` seconds: production code that never
    returns (a livelock while settling, say) fails the harness with the seed instead of hanging."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = action()
        except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name=f"sim-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise HarnessError(f"{what} did not end within {timeout:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def simulate(env: Environment, seed: int) -> ScheduleResult:
    """One schedule: generate, build, interleave, settle, check."""
    started = time.monotonic()
    rng = random.Random(seed)
    spec = generate_repository(rng)
    plans = generate_actors(rng, spec)
    clock = SimClock(utcnow())
    scheduler = Scheduler(rng, clock, stickiness=rng.choice((0.0, 0.5, 0.8, 0.95)))
    world = World(env, seed, spec, plans, clock, scheduler)
    bounded(lambda: build_repository(world), PHASE_TIMEOUT, "building the repository")
    for number, plan in enumerate(plans):
        slot = env.slot(number)
        settings = env.settings.with_changes(repository_url=slot.url, replica_url=slot.url)
        world.actors.append(Actor(number, plan, slot, settings, run_id=f"sim-{seed}-{plan.name}"))
    try:
        for actor in world.actors:
            actor.slot.actor, actor.slot.world = actor, world
        with serial_thread_pools():
            scheduler.run(world.actors, lambda actor: _act(world, actor), tick)
    finally:
        for actor in world.actors:
            actor.slot.actor = actor.slot.world = None
    leaked = [actor.name for actor in world.actors if getattr(actor.slot.engine.pool, "checkedout", lambda: 0)()]
    if leaked:
        raise HarnessError(f"seed {seed}: {leaked} left database connections checked out")
    with serial_thread_pools():
        bounded(lambda: settle(world), PHASE_TIMEOUT, "settling")
    bounded(lambda: check(world), PHASE_TIMEOUT, "the oracle")
    report = describe(world) if world.findings else ""
    return ScheduleResult(seed, env.backend, world.findings, report, time.monotonic() - started, scheduler.decisions)


@dataclass
class Campaign:
    """Schedules run on one backend and what they found."""

    backend: str
    ran: int = 0
    seconds: float = 0.0
    failures: list[ScheduleResult] = field(default_factory=list)
    # The harness failed (not the mover): the campaign stopped there.
    harness_error: str | None = None

    def add(self, result: ScheduleResult) -> None:
        self.ran += 1
        self.seconds += result.seconds
        if result.findings:
            self.failures.append(result)

    def summary(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "schedules": self.ran,
            "seconds": round(self.seconds, 1),
            "failed": [{"seed": r.seed, "findings": r.findings} for r in self.failures],
            "harness_error": self.harness_error,
        }

    def message(self, replay: str, details: int = 2) -> str:
        replay = f"{replay} -k {self.backend}"
        headline = (
            f"{len(self.failures)} of {self.ran} schedules on {self.backend} broke an invariant "
            f"(replay one: COSTALLOC_SEED=<seed> {replay})"
        )
        lines = [headline]
        for result in self.failures:
            lines.append(f"seed {result.seed}: {len(result.findings)} findings, first: {result.findings[0]}")
        for result in self.failures[:details]:
            lines.append("")
            lines.append(f"=== seed {result.seed} on {result.backend} (COSTALLOC_SEED={result.seed} {replay})")
            lines.extend(f"  finding: {finding}" for finding in result.findings)
            lines.append(result.report)
        return "\n".join(lines)


def run_campaign(env: Environment, seeds: Iterable[int], deadline: float | None = None) -> Campaign:
    """Every seed in turn on one environment. A harness error stops the campaign: the databases may
    hold a stuck actor's locks, and later schedules would not mean anything."""
    campaign = Campaign(env.backend)
    for seed in seeds:
        if deadline is not None and time.monotonic() > deadline:
            break
        try:
            campaign.add(simulate(env, seed))
        except HarnessError as error:
            campaign.harness_error = f"seed {seed} on {env.backend}: {error} (replay: COSTALLOC_SEED={seed})"
            break
    return campaign


def report(folder: Path) -> int:
    """`make soak`'s summary of the campaigns' JSON files; exit status 1 when anything was found."""
    campaigns = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    ran = sum(c["schedules"] for c in campaigns)
    failed = [f for c in campaigns for f in c["failed"]]
    findings = sum(len(f["findings"]) for f in failed)
    for c in campaigns:
        rate = c["schedules"] / c["seconds"] if c["seconds"] else 0.0
        print(
            f"{c['backend']}: {c['schedules']} schedules in {c['seconds']}s ({rate:.2f}/s), "
            f"{len(c['failed'])} with violations"
        )
        for f in c["failed"][:20]:
            print(f"  seed {f['seed']}: {f['findings'][0][:300]}")
        if c.get("harness_error"):
            print(f"  HARNESS ERROR (not a finding about the mover): {c['harness_error']}")
    print(f"soak: {ran} schedules ran, {len(failed)} broke an invariant ({findings} violations found)")
    return 1 if failed or not campaigns or any(c.get("harness_error") for c in campaigns) else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "report":
        sys.exit(report(Path(sys.argv[2])))
    sys.exit("usage: simulation.py report FOLDER")
