"""Property: whatever commands come in, replaying the log (from nothing, or from a checkpoint)
rebuilds the very same state, every invariant holds after every step (no machine over-committed,
no task in two places, job states follow their tasks, quota usage up to date), and after a
scheduling round every pending task has a reason."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.master.errors import AdmissionError
from corral.master.quota import Quotas
from corral.master.commands import AgentReport, Kill, RegisterMachine, Submit, Tick, Update
from corral.master.core import MasterCore
from corral.master.state import CellState
from corral.model.job import TaskState

from tests.master.helpers import Harness

JOBS = ["a", "b", "c", "d"]
USERS = ["alice", "bob"]
MACHINES = ["m1", "m2", "m3"]

job_spec = st.fixed_dictionaries({
    "name": st.sampled_from(JOBS),
    "user": st.sampled_from(USERS),
    "tasks": st.integers(1, 4),
    "priority": st.sampled_from([0, 2, 5, 9]),
    "resources": st.fixed_dictionaries({"cpu": st.sampled_from(["500m", "1", "2", "3"]),
                                        "memory": st.sampled_from(["512Mi", "1Gi", "4Gi"])}),
}, optional={"after": st.sampled_from(JOBS + [None] * 6), "max_per_domain": st.just({"rack": 2}),
             "opportunistic": st.sampled_from([True, 1, 2])})  # beyond quota: opportunistic tasks, upgrades

# Alloc sets and jobs that run in them (corral/master/allocs.py), in the same name spaces.
SETS = ["s1"]
allocset_spec = st.fixed_dictionaries({
    "kind": st.just("allocset"), "name": st.sampled_from(SETS), "user": st.sampled_from(USERS),
    "count": st.integers(1, 3), "priority": st.sampled_from([0, 2, 5, 9]),
    "resources": st.fixed_dictionaries({"cpu": st.sampled_from(["1", "2"]), "memory": st.sampled_from(["1Gi", "2Gi"])}),
})
alloc_job_spec = st.fixed_dictionaries({
    "name": st.sampled_from(["w", "x"]), "user": st.sampled_from(USERS), "tasks": st.integers(1, 2),
    "priority": st.sampled_from([2, 9]), "alloc": st.sampled_from(SETS),
    "resources": st.fixed_dictionaries({"cpu": st.sampled_from(["500m", "1"]), "memory": st.sampled_from(["256Mi", "1Gi"])}),
}, optional={"alloc_placement": st.sampled_from(["index", "any"])})
any_spec = st.one_of(job_spec, job_spec, allocset_spec, alloc_job_spec, alloc_job_spec)

register = st.builds(lambda n, cpu, rack: ("register", n, cpu, rack), st.sampled_from(MACHINES),
                     st.sampled_from(["2", "4", "8"]), st.sampled_from(["r1", "r2"]))
submit = st.builds(lambda s, rid: ("submit", s, rid), any_spec, st.sampled_from([None, "r1", "r2"]))
schedule = st.just(("schedule",))
# Weighted by repetition: mostly submissions and rounds, some churn, rare lost machines.
# A job into the alloc set of a user who has a live one (a set is submitted first if none has).
in_alloc = st.builds(lambda job, allocset: ("in_alloc", job, allocset), alloc_job_spec, allocset_spec)

simple_commands = st.one_of(
    register, register, submit, submit, submit, submit, schedule, schedule, schedule, schedule, in_alloc, in_alloc,
    st.builds(lambda j, u: ("kill", f"{j}.{u}"), st.sampled_from(JOBS + SETS + ["w"]), st.sampled_from(USERS)),
    st.builds(lambda s, n: ("update", s, n), any_spec, st.integers(1, 3)),
    st.builds(lambda s, n: ("update", s, n), job_spec, st.integers(1, 3)),
    st.builds(lambda i, how: ("report", i, how), st.integers(0, 50), st.sampled_from(["finished", "failed", "killed"])),
    st.builds(lambda i, how: ("report", i, how), st.integers(0, 50), st.sampled_from(["finished", "failed", "killed"])),
    st.builds(lambda s: ("tick", s), st.sampled_from([0.0, 0.0, 5.0, 20.0])),
    st.just(("checkpoint",)),
)
# A scheduling round planned on a snapshot while other commands change the cell, then committed
# (what the live master's scheduler thread does): stale placements must be dropped, never applied.
commands = st.one_of(simple_commands, simple_commands, simple_commands,
                     st.builds(lambda subs: ("interleaved", subs), st.lists(simple_commands, max_size=4)))


def run(h: Harness, cmd: tuple) -> None:
    kind = cmd[0]
    try:
        if kind == "register":
            h.run(RegisterMachine(cmd[1], {"cpu": cmd[2], "memory": "16Gi"}, address=f"http://{cmd[1]}",
                                  attributes={"rack": cmd[3]}))
        elif kind == "submit":
            h.run(Submit(cmd[1], request_id=cmd[2]))
        elif kind == "kill":
            h.run(Kill(cmd[1]))
        elif kind == "in_alloc":
            live = [j for j in h.state.jobs.values() if j.is_allocset and not j.state.ended]
            if not live:
                h.run(Submit(cmd[2]))
                live = [h.state.jobs[f"{cmd[2]['name']}.{cmd[2]['user']}"]]
                h.schedule()  # its allocs placed where there is room
            h.run(Submit({**cmd[1], "user": live[0].user, "alloc": live[0].name}))
        elif kind == "update":
            h.run(Update(cmd[1], max_unavailable=cmd[2]))
        elif kind == "schedule":
            h.schedule()
            waiting = [t for t in h.state.tasks.values() if t.state is TaskState.PENDING and not t.reason]
            assert not waiting, f"pending without a reason after a round: {[t.name for t in waiting]}"
        elif kind == "report":
            running = sorted(n for n, t in h.state.tasks.items()
                             if t.state is TaskState.RUNNING and not h.state.is_alloc(n))  # no agent runs an alloc
            if running:
                task = h.state.tasks[running[cmd[1] % len(running)]]
                h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation,
                                                  "state": cmd[2], "exit_code": 0 if cmd[2] == "finished" else 1}]))
        elif kind == "tick":
            h.clock.advance(cmd[1])
            h.run(Tick())
        elif kind == "interleaved":
            rnd = h.core.snapshot()
            plan = h.core.scheduler.schedule(rnd.view, rnd.pending) if rnd.pending else None
            for sub in cmd[1]:
                run(h, sub)
            if plan is not None:
                h.commit(rnd, plan)
        elif kind == "checkpoint":
            h.store.write_checkpoint(h.state.seq, h.state.to_dict())
    except AdmissionError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=5, max_size=60))
def test_a_replayed_log_rebuilds_the_same_state(cmds):
    h = Harness(quotas=Quotas.parse({"*": {"batch": {"cpu": 12, "memory": "64Gi"},
                                           "production": {"cpu": 6, "memory": "32Gi"}}}),
                lost_after_s=15.0)
    for cmd in cmds:
        run(h, cmd)  # validate mode: invariants checked after every command
    live = h.state.to_dict()
    from_log = CellState(h.state.cell)
    for event in h.store.read_since(0):
        from_log.apply(event)
    assert from_log.to_dict() == live
    from_log.validate()
    rebuilt = MasterCore.rebuild(h.store)  # latest checkpoint + the log after it
    assert rebuilt.to_dict() == live
    # The same iteration orders too (dict equality ignores order): the same decisions follow.
    for name in ("machines", "jobs", "tasks", "opportunistic"):
        assert list(getattr(rebuilt, name)) == list(getattr(h.state, name)), name
    assert CellState.from_dict(live).to_dict() == live
