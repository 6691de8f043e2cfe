"""The executor of the location's jobs: how a run executes its steps, chosen by COSTALLOC_EXECUTOR
(Settings.executor) and changeable per run in the launchpad (`execution: config: mode: ...`).

- `auto` (the default): a run sizes itself by its project before it starts. When the project's
  misplaced files fit in one bundle, nothing can move in parallel, and a process per step (3-8 s
  each on a small machine) would cost more than the run's work: the steps run in the run's own
  process. A run that will make several bundles fans them out over processes, as does a run of a
  range of projects.
- `in_process`, `multiprocess`: every run so.
- `celery`: every step is a task for the dagster-celery workers listening on the broker
  COSTALLOC_CELERY_BROKER_URL, results back over the broker (rpc://, as dagster.celery.yaml tells
  the workers).
  The pool `costalloc_bundles` still bounds the bundles of all runs: the run claims a slot in the
  instance's storage before it sends a bundle's task and frees it when the result comes back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.definitions.executor_definition import ExecutorRequirement
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.multiprocess import MultiprocessExecutor
from dagster._core.storage.tags import PARTITION_NAME_TAG

from costalloc_pipeline.config import EXECUTORS, Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.assets.relocation import RELOCATION
from costalloc_pipeline.defs.partitions import project_id_of
from costalloc_pipeline.errors import ConfigError
from costalloc_pipeline.placement.estimate import MisplacedEstimate, estimate_misplaced
from costalloc_pipeline.placement.rule import load_placement

BROKER_VARIABLE = "COSTALLOC_CELERY_BROKER_URL"
# Results come back over the broker itself: no other service, and the workers' yaml says the same.
DEFAULT_BACKEND = "rpc://"
# Steps of the relocation graph asset are named after it: relocation.plan_relocation, ...
_RELOCATION_STEP = f"{RELOCATION.path[-1]}."

Estimator = Callable[[int], MisplacedEstimate]


# How each mode `auto` picks runs the steps, as the run's log says it.
LANES = {"in_process": "in the run's process", "multiprocess": "in a process each"}


def auto_mode(
    step_keys: Sequence[str], partition_key: str | None, estimate: Estimator, bounds: tuple[int, int]
) -> tuple[str, str]:
    """The executor `auto` picks for a run ("in_process" or "multiprocess"), and why."""
    if not any(key.startswith(_RELOCATION_STEP) for key in step_keys):
        return "in_process", "no bundles to move"
    if partition_key is None:
        return "multiprocess", "a range of projects"
    found = estimate(project_id_of(partition_key))
    why = f"{partition_key} has about {found.files} misplaced files ({found.bytes} bytes)"
    return ("in_process" if found.fits_one_bundle(*bounds) else "multiprocess"), why


class SizedByProject(dg.Executor):
    """`auto`: in one process or over processes, decided at run start by the run's project."""

    def __init__(self, one_process: dg.Executor, processes: dg.Executor, settings: Settings) -> None:
        self._lanes = {"in_process": one_process, "multiprocess": processes}
        self._settings = settings

    @property
    def retries(self) -> RetryMode:
        return self._lanes["multiprocess"].retries

    def _estimate(self, project_id: int) -> MisplacedEstimate:
        placement = load_placement(engine_for(self._settings.repository_url))
        return estimate_misplaced(engine_for(self._settings.replica_url), project_id, placement)

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        settings = self._settings
        mode, why = auto_mode(
            execution_plan.step_keys_to_execute,
            plan_context.dagster_run.tags.get(PARTITION_NAME_TAG),
            self._estimate,
            (settings.bundle_max_files, settings.bundle_max_bytes),
        )
        plan_context.log.info(f"executor auto: {why}: steps run {LANES[mode]}")
        yield from self._lanes[mode].execute(plan_context, execution_plan)


def _celery(config: dict[str, Any], retries: RetryMode) -> dg.Executor:
    # Imported here: only runs over Celery pay for importing it.
    from dagster_celery.executor import CeleryExecutor

    broker = config.get("broker") or os.environ.get(BROKER_VARIABLE)
    if not broker:
        raise ConfigError(f"COSTALLOC_EXECUTOR=celery needs the broker's URL in {BROKER_VARIABLE}")
    executor: dg.Executor = CeleryExecutor(  # type: ignore[no-untyped-call]
        retries=retries,
        broker=broker,
        backend=config.get("backend") or DEFAULT_BACKEND,
        config_source=config.get("config_source"),
    )
    return executor


def _requirements(config: Mapping[str, object]) -> Sequence[ExecutorRequirement]:
    # Steps in other processes (or on other hosts) reload the job and read what earlier steps stored.
    return [] if config.get("mode") == "in_process" else dg.multiple_process_executor_requirements()


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """The location's executor, its mode defaulting to the settings'."""
    schema = {
        "mode": dg.Field(
            dg.Enum("CostallocExecutorMode", [dg.EnumValue(mode) for mode in EXECUTORS]),
            default_value=settings.executor,
            description="auto, in_process, multiprocess or celery (COSTALLOC_EXECUTOR).",
        ),
        "max_concurrent": dg.Field(
            int, is_required=False, description="Step processes at once over processes (default: the cores)."
        ),
        "broker": dg.Field(dg.StringSource, is_required=False, description=f"celery: default ${BROKER_VARIABLE}."),
        "backend": dg.Field(
            dg.StringSource, is_required=False, description=f"celery: default {DEFAULT_BACKEND}, as the workers'."
        ),
        "config_source": dg.Field(
            dg.Permissive(),  # type: ignore[no-untyped-call]
            is_required=False,
            description="celery: more Celery settings.",
        ),
        "retries": get_retries_config(),  # type: ignore[no-untyped-call]
    }

    @dg.executor(name="costalloc", config_schema=schema, requirements=_requirements)
    def costalloc_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        # The config as the schema above made it.
        config: dict[str, Any] = dict(init_context.executor_config)
        retries = RetryMode.from_config(config["retries"])
        assert retries is not None, "the retries config has a default"
        processes = MultiprocessExecutor(retries=retries, max_concurrent=config.get("max_concurrent"))
        mode = config["mode"]
        if mode == "celery":
            return _celery(config, retries)
        if mode == "multiprocess":
            return processes
        if mode == "in_process":
            return InProcessExecutor(retries=retries)
        return SizedByProject(InProcessExecutor(retries=retries), processes, settings)

    return costalloc_executor
