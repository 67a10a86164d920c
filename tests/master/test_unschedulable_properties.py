"""Properties of the unschedulable queue, driven by random streams of submissions, ends and kills.

After any stream, once rounds are run until nothing moves:

* no task sits parked while a machine has room for it at its preemption level (free plus what lower
  priorities could give up), whatever its shape or user;
* no pending reason outlives the state it describes: what ``pending_reason`` says of every pending task
  is what the scheduler says of its class on the cell as it is now.

(Requests here have no constraints, GPUs or ports, so room is exactly what the scheduler needs.)
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.master.commands import AgentReport, Kill
from corral.master.commit import readable
from corral.model.job import TaskState
from corral.model.priority import preemptible_below

from tests.master.helpers import Harness

USERS = ("alice", "bob", "carol")
submit = st.tuples(st.just("submit"), st.sampled_from(USERS), st.sampled_from(["1", "2", "3", "500m"]),
                   st.sampled_from(["1Gi", "3Gi"]), st.integers(1, 6), st.sampled_from([2, 5, 9]))
finish = st.tuples(st.just("finish"), st.integers(0, 10_000))
kill = st.tuples(st.just("kill"), st.integers(0, 10_000))
round_ = st.tuples(st.just("round"))


def settle(h: Harness) -> None:
    for _ in range(30):
        reply = h.schedule().reply
        if not reply["placed"] and not reply["preempted"]:
            return
    raise AssertionError("rounds never settled")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(submit, finish, kill, round_), min_size=1, max_size=30))
def test_no_task_is_parked_while_a_machine_has_room_and_no_reason_is_stale(ops):
    h = Harness()
    for name, cpu in (("m1", "4"), ("m2", "6")):
        h.machine(name, cpu=cpu, memory="8Gi")
    jobs: list[str] = []
    for op in ops:
        if op[0] == "submit":
            _, user, cpu, memory, tasks, priority = op
            name = f"j{len(jobs)}"
            h.submit(name, user=user, cpu=cpu, memory=memory, tasks=tasks, priority=priority)
            jobs.append(f"{name}.{user}")
        elif op[0] == "finish":
            running = [t for t in h.state.tasks.values() if t.state is TaskState.RUNNING]
            if running:
                t = running[op[1] % len(running)]
                h.run(AgentReport(t.machine, [{"task_id": t.name, "generation": t.generation, "state": "finished"}]))
        elif op[0] == "kill" and jobs:
            h.run(Kill(jobs[op[1] % len(jobs)]))
        else:
            h.schedule()
    settle(h)
    view, queue = h.state.view, h.core.queue
    for name in queue.class_of:
        request = h.state.jobs[h.state.tasks[name].job].request
        room = view.available_at(preemptible_below(request.priority))
        assert not (room >= request.vector).all(axis=1).any(), f"{name} is parked but a machine has room for it"
    for name in h.state.pending:
        task = h.state.tasks[name]
        reason, _ = h.core.pending_reason(task)
        fresh = readable(h.core.scheduler.explain(view, h.state.jobs[task.job].request).summary())
        assert reason == fresh, f"{name}: says {reason!r}, the cell says {fresh!r}"
    assert np.all(view.free >= 0)
