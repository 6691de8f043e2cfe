"""The association sensor: partitions, one run per change, a cursor that is a high-water mark."""

from __future__ import annotations

import dagster as dg

from costalloc_pipeline.defs.location import build_resources
from costalloc_pipeline.defs.sensors import cost_allocation_changes


def evaluate(stack, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=stack.runner.instance, cursor=cursor, resources=build_resources(stack.settings)
    ) as context:
        return cost_allocation_changes(context)


def test_each_change_is_requested_once(stack):
    first, second, _ = stack.report.project_ids
    stack.assign(first, "genomics")
    stack.assign(second, "imaging")

    tick = evaluate(stack, None)
    assert sorted(r.partition_key for r in tick.run_requests) == sorted([f"syn{first}", f"syn{second}"])
    [added] = tick.dynamic_partitions_requests
    assert sorted(added.partition_keys) == sorted([f"syn{first}", f"syn{second}"])
    assert int(tick.cursor) > 0

    # Nothing changed: the cursor stays and nothing is requested, even though the sensor re-reads
    # a window below its cursor, because the runs of those changes exist.
    stack.runner.instance.add_dynamic_partitions("projects", [f"syn{first}", f"syn{second}"])
    for request in tick.run_requests:
        stack.runner.run(request.partition_key, {"dagster/run_key": request.run_key})
    again = evaluate(stack, tick.cursor)
    assert (again.run_requests, again.cursor) == ([], tick.cursor)

    stack.assign(first, "imaging")
    moved = evaluate(stack, tick.cursor)
    assert [r.partition_key for r in moved.run_requests] == [f"syn{first}"]
    assert int(moved.cursor) > int(tick.cursor)


def test_an_unassigned_project_keeps_its_partition(stack):
    first = stack.report.project_ids[0]
    stack.assign(first, "genomics")
    tick = evaluate(stack, None)
    stack.runner.instance.add_dynamic_partitions("projects", [f"syn{first}"])
    stack.unassign(first)
    after = evaluate(stack, tick.cursor)
    assert [r.partition_key for r in after.run_requests] == [f"syn{first}"]
    assert after.dynamic_partitions_requests == []
    assert stack.runner.instance.get_dynamic_partitions("projects") == [f"syn{first}"]


def test_a_partition_of_an_earlier_version_gets_its_syn_key_beside_it(stack):
    first = stack.report.project_ids[0]
    stack.runner.instance.add_dynamic_partitions("projects", [str(first)])
    stack.assign(first, "genomics")
    [added] = evaluate(stack, None).dynamic_partitions_requests
    assert added.partition_keys == [f"syn{first}"]


def test_the_same_assignment_twice_is_not_a_change(stack):
    first = stack.report.project_ids[0]
    stack.assign(first, "genomics")
    tick = evaluate(stack, None)
    stack.assign(first, "genomics")
    assert evaluate(stack, tick.cursor).cursor == tick.cursor
