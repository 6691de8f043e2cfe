"""Randomized interleavings of the whole mover (the harness is tests/mover/simulation.py).

Each schedule is generated from its seed: a small repository with the awkward cases, actors that
assign and unassign, relocate (sometimes two runs of one project, sometimes crashing), resume,
write, and check, run one step at a time in an order the seed decides; then everything settles and
the oracle checks DESIGN.md section 4.

- `COSTALLOC_SCHEDULES` (default 200): schedules in all, split between the backends.
- `COSTALLOC_SEED=<n>`: replay that one schedule (on each backend; `-k sqlite` or `-k postgresql`
  for one); the failure message names the seed and prints the schedule step by step.
- `COSTALLOC_SEED_START` (default 0): the first seed, to explore other seeds than CI's.
- `COSTALLOC_SOAK_DIR`: write each backend's summary there as JSON (`make soak` prints them).
- `COSTALLOC_SIM_MINUTES`: stop starting new schedules after this long (the count is then lower).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from helpers.backends import BACKENDS

from .simulation import Environment, run_campaign

SCHEDULES = int(os.environ.get("COSTALLOC_SCHEDULES", "200"))
SEED_START = int(os.environ.get("COSTALLOC_SEED_START", "0"))
REPLAY = os.environ.get("COSTALLOC_SEED")
SOAK_DIR = os.environ.get("COSTALLOC_SOAK_DIR")
MINUTES = os.environ.get("COSTALLOC_SIM_MINUTES")
REPLAY_COMMAND = "pytest tests/mover/test_interleavings.py"


def seeds_for(backend: str) -> range:
    """Each backend its own block of seeds, so together they cover SCHEDULES different schedules."""
    if REPLAY is not None:
        return range(int(REPLAY), int(REPLAY) + 1)
    per_backend = math.ceil(SCHEDULES / len(BACKENDS))
    first = SEED_START + BACKENDS.index(backend) * per_backend
    return range(first, first + per_backend)


def test_interleavings(settings, moto_endpoint, request) -> None:
    backend = request.node.callspec.params["database_url"]
    deadline = time.monotonic() + float(MINUTES) * 60 if MINUTES else None
    env = Environment(settings, moto_endpoint)
    try:
        campaign = run_campaign(env, seeds_for(backend), deadline)
    finally:
        env.close()
    if SOAK_DIR:
        folder = Path(SOAK_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{backend}-{SEED_START}.json").write_text(json.dumps(campaign.summary(), indent=1))
    assert campaign.harness_error is None, f"the harness failed (not the mover): {campaign.harness_error}"
    assert campaign.ran > 0
    assert not campaign.failures, campaign.message(REPLAY_COMMAND)
