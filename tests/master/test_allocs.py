"""Alloc sets in the master core: admitted, placed and kept like jobs; jobs placed inside their allocs.

Every step runs in validate mode (the invariants, alloc accounting included, are checked after each
command) and each test ends by rebuilding the state from its log: the same state, allocs included.
"""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, KillTask, MachineDown, StartTask, Submit, Update
from corral.master.core import MasterCore
from corral.master.errors import AdmissionError
from corral.master.quota import Quotas
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


def allocset(name="web-allocs", user="alice", count=2, cpu="1", memory="1Gi", **fields):
    return {"kind": "allocset", "name": name, "user": user, "count": count,
            "resources": {"cpu": cpu, "memory": memory}, **fields}


def member(name, alloc="web-allocs", user="alice", tasks=1, cpu="500m", memory="256Mi", **fields):
    return {"name": name, "user": user, "tasks": tasks, "alloc": alloc, "command": "sleep",
            "resources": {"cpu": cpu, "memory": memory}, **fields}


@pytest.fixture
def h() -> Harness:
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.machine("m2", cpu="4", memory="8Gi")
    return h


def same_after_replay(h: Harness) -> None:
    rebuilt = MasterCore.rebuild(h.store)
    assert rebuilt.to_dict() == h.state.to_dict()
    assert {a: set(m) for a, m in rebuilt.alloc_members.items()} == {a: set(m) for a, m in h.state.alloc_members.items()}
    rebuilt.validate()


def starts(out) -> dict[str, StartTask]:
    return {e.task: e for e in out.effects if isinstance(e, StartTask)}


def test_an_alloc_set_is_placed_like_a_job_and_holds_its_resources_with_nothing_running(h):
    out = h.run(Submit(allocset(count=2, cpu="3")))
    assert [e.TYPE for e in out.events] == ["allocset_submitted"] and out.reply["kind"] == "allocset"
    out = h.schedule()
    assert out.reply["placed"] == 2 and not starts(out), "no agent runs an alloc"
    allocs = [h.task("web-allocs", i) for i in range(2)]
    assert all(a.state is R for a in allocs) and {a.machine for a in allocs} == {"m1", "m2"}
    view = h.state.view
    assert [int(view.free[view.index[m], 0]) for m in ("m1", "m2")] == [1000, 1000]
    assert h.core.assignments("m1") == [], "an alloc is not an assignment of its agent"
    same_after_replay(h)


def test_tasks_of_two_jobs_share_an_alloc_and_are_not_counted_twice_against_the_machine(h):
    h.run(Submit(allocset(count=1, cpu="2", memory="1Gi")))
    h.schedule()
    alloc = h.task("web-allocs", 0)
    h.run(Submit(member("web", cpu="1", memory="512Mi")))
    h.run(Submit(member("logsaver", cpu="500m", memory="256Mi")))
    out = h.schedule()
    launches = starts(out)
    assert set(launches) == {"0.web.alice.local", "0.logsaver.alice.local"}
    for launch in launches.values():
        assert launch.machine == alloc.machine
        assert launch.launch["alloc"] == {"id": alloc.name, "resources": {"cpu": 2000, "memory": 2**30, "disk": 0}}
    assert launches["0.web.alice.local"].launch["resources"]["cpu"] == 1000, "a task keeps its own limits"
    view = h.state.view
    assert int(view.free[view.index[alloc.machine], 0]) == 2000, "only the alloc's 2 cores are taken"
    assert h.state.alloc_used(alloc.name).tolist() == [1500, 768 * 2**20, 0, 0]
    assert sorted(h.core.assignments(alloc.machine)) == ["0.logsaver.alice.local", "0.web.alice.local"]
    same_after_replay(h)


WAITS = [
    ("a task bigger than the room left waits with the alloc's numbers",
     dict(cpu="1500m"), "alloc web-allocs/0 has 500m cpu left, task asks 1500m"),
    ("memory is checked too", dict(cpu="100m", memory="1Gi"), "alloc web-allocs/0 has 768Mi memory left, task asks 1Gi"),
]


@pytest.mark.parametrize("case,fields,reason", WAITS, ids=[c[0] for c in WAITS])
def test_a_task_waits_for_room_in_its_alloc_with_a_reason_naming_it(h, case, fields, reason):
    h.run(Submit(allocset(count=1, cpu="2", memory="1Gi")))
    h.schedule()
    h.run(Submit(member("web", cpu="1500m", memory="256Mi")))
    h.schedule()
    h.run(Submit(member("logsaver", **fields)))
    out = h.schedule()
    assert not starts(out)
    task = h.task("logsaver")
    assert task.state is P and h.core.pending_reason(task)[0] == reason
    # The web server ends: its room is the log saver's now, on the alloc's machine.
    web = h.task("web")
    h.run(AgentReport(web.machine, [{"task_id": web.name, "generation": web.generation, "state": "finished"}]))
    out = h.schedule()
    assert set(starts(out)) == {task.name} and task.alloc == h.task("web-allocs", 0).name
    same_after_replay(h)


def test_a_task_restarted_by_an_update_that_fits_its_alloc_stays_on_the_alloc_machine(h):
    h.run(Submit(allocset(count=2, cpu="2")))
    h.schedule()
    h.run(Submit(member("web", tasks=2, cpu="500m")))
    h.schedule()
    before = {i: h.task("web", i).machine for i in range(2)}
    assert before == {i: h.task("web-allocs", i).machine for i in range(2)}, "task i runs in alloc i"
    h.run(Update(member("web", tasks=2, cpu="1500m"), max_unavailable=2))
    out = h.schedule()
    assert {s.task: s.machine for s in starts(out).values()} == {h.task("web", i).name: before[i] for i in range(2)}
    assert all(h.task("web", i).version == 2 for i in range(2))
    same_after_replay(h)


def test_any_placement_fills_the_fullest_alloc_with_room(h):
    h.run(Submit(allocset(count=2, cpu="2")))
    h.schedule()
    h.run(Submit(member("big", tasks=1, cpu="1500m", alloc_placement="any")))
    h.schedule()
    big_alloc = h.task("big").alloc
    h.run(Submit(member("small", tasks=2, cpu="500m", alloc_placement="any")))
    h.schedule()
    assert h.task("small", 0).alloc == big_alloc, "best fit: the alloc with 500m left"
    assert h.task("small", 1).alloc != big_alloc
    same_after_replay(h)


def test_killing_the_alloc_set_kills_the_jobs_in_it(h):
    h.run(Submit(allocset(count=1)))
    h.schedule()
    h.run(Submit(member("web")))
    h.schedule()
    out = h.run(Kill("web-allocs.alice"))
    assert [e.TYPE for e in out.events] == ["job_killed", "allocset_killed"]
    kills = [e for e in out.effects if isinstance(e, KillTask)]
    assert [k.task for k in kills] == ["0.web.alice.local"], "only the task is killed on its agent"
    assert h.state.jobs["web.alice"].state is JobState.KILLED and h.task("web-allocs").state is D
    assert not h.state.alloc_members and not h.state.view.where
    same_after_replay(h)


def test_a_lost_machine_takes_the_alloc_and_its_tasks_which_follow_it_to_its_new_machine(h):
    h.run(Submit(allocset(count=1, cpu="2")))
    h.schedule()
    h.run(Submit(member("web")))
    h.schedule()
    lost = h.task("web-allocs").machine
    h.run(MachineDown(lost))
    h.core.reschedule.rate = 1e9  # no rate limit for this test
    assert h.task("web").state is P and h.task("web-allocs").state is P
    for _ in range(3):
        h.clock.advance(60)
        h.schedule()
    assert h.task("web-allocs").state is R and h.task("web-allocs").machine != lost
    assert h.task("web").machine == h.task("web-allocs").machine
    same_after_replay(h)


def test_preempting_an_alloc_preempts_its_tasks(h):
    h.run(Submit(allocset(count=2, cpu="4", priority=1)))
    h.schedule()
    h.run(Submit(member("web", tasks=2)))
    h.schedule()
    h.run(Submit({"name": "prod", "user": "bob", "priority": 9, "tasks": 1, "command": "x",
                  "resources": {"cpu": "2", "memory": "1Gi"}}))
    out = h.schedule()
    ended = [(e.task, e.via) for e in out.events if e.TYPE == "task_ended"]
    victim = next(t for t, via in ended if t.endswith("web-allocs.alice.local"))
    inside = [t for t, via in ended if t.startswith(victim.split(".")[0] + ".web.")]
    assert inside and all(via == "evict" for _, via in ended)
    assert any(isinstance(e, KillTask) and e.task == inside[0] for e in out.effects)
    assert "preempted" in h.state.tasks[inside[0]].history[-1].note
    assert h.task("prod", user="bob").state is R
    same_after_replay(h)


ADMISSION = [
    ("a job in an alloc set that does not exist", member("web", alloc="nope"), "alloc", "no alloc set nope"),
    ("more tasks than allocs by index", member("web", tasks=3), "tasks", "at most 2 tasks"),
    ("a task bigger than an alloc", member("web", cpu="2"), "resources.cpu", "a task asks 2, an alloc of web-allocs holds 1"),
    ("constraints belong to the set", member("web", constraints=["rack==r1"]), "constraints", "give constraints to alloc set"),
    ("ports in allocs are not supported yet", member("web", resources={"cpu": "100m", "memory": "1Mi", "ports": [80]}),
     "resources.ports", "cannot ask for ports"),
    ("another user's alloc set", member("web", user="bob"), "alloc", "of user bob"),
]


@pytest.mark.parametrize("case,spec,field,words", ADMISSION, ids=[c[0] for c in ADMISSION])
def test_admission_of_jobs_in_alloc_sets_names_the_field(h, case, spec, field, words):
    h.run(Submit(allocset(count=2)))
    seq = h.state.seq
    with pytest.raises(AdmissionError) as err:
        h.run(Submit(spec))
    assert err.value.status == 422 and err.value.errors[0][0] == field and words in err.value.errors[0][1]
    assert h.state.seq == seq


def test_an_alloc_set_is_charged_to_quota_and_its_jobs_are_not():
    h = Harness(quotas=Quotas.parse({"alice": {"batch": {"cpu": 4, "memory": "16Gi"}}}))
    h.run(Submit(allocset(count=2, cpu="2")))
    assert h.state.usage_of("alice", h.state.jobs["web-allocs.alice"].band).tolist()[0] == 4000
    h.run(Submit(member("web", tasks=2, cpu="1")))  # inside the charged allocs: no more quota
    with pytest.raises(AdmissionError) as err:
        h.run(Submit(allocset(name="more", count=1, cpu="1")))
    assert err.value.status == 422 and err.value.errors[0][0].startswith("quota.batch.cpu")


UPDATES = [
    ("an alloc set may not change its resources", dict(cpu="2"), "resources"),
    ("an alloc set may not become a job", dict(kind="job"), "kind"),
]


@pytest.mark.parametrize("case,change,field", UPDATES, ids=[c[0] for c in UPDATES])
def test_updates_of_alloc_sets_that_are_refused(h, case, change, field):
    h.run(Submit(allocset(count=2)))
    spec = allocset(count=2, **{k: v for k, v in change.items() if k != "kind"})
    if change.get("kind"):
        spec = {"name": "web-allocs", "user": "alice", "tasks": 2, "resources": {"cpu": "1", "memory": "1Gi"}}
    with pytest.raises(AdmissionError) as err:
        h.run(Update(spec))
    assert err.value.errors[0][0] == field


def test_an_alloc_set_grows_in_place_and_shrinks_only_by_empty_allocs(h):
    h.run(Submit(allocset(count=1)))
    h.schedule()
    h.run(Submit(member("web", tasks=1, alloc_placement="any")))
    h.schedule()
    h.run(Update(allocset(count=3)))
    h.schedule()
    assert h.task("web-allocs", 2).state is R
    h.run(Update(member("web", tasks=3, alloc_placement="any", cpu="1")))
    h.schedule()
    assert {h.task("web", i).alloc for i in range(3)} == {h.task("web-allocs", i).name for i in range(3)}
    with pytest.raises(AdmissionError) as err:
        h.run(Update(allocset(count=2)))  # alloc 2 holds a task of web
    assert err.value.errors[0][0] == "count" and "still holds tasks" in err.value.errors[0][1]
    h.run(Update(member("web", tasks=2, alloc_placement="any", cpu="1")))
    h.schedule()
    alloc2 = h.task("web-allocs", 2).name
    assert not h.state.alloc_members.get(alloc2), "task 2 of web, scaled away, was the one in alloc 2"
    h.run(Update(allocset(count=2)))  # empty now: it goes
    assert h.task("web-allocs", 2).state is D
    same_after_replay(h)


def _agent_says(state_word):
    def act(h):
        web = h.task("web")
        status = {"task_id": web.name, "generation": web.generation, "state": state_word, "exit_code": 1,
                  "last_error": "boom", "failures": 5}
        return h.run(AgentReport(web.machine, [status]))
    return act


def _preempt(h):
    h.run(Submit({"name": "prod", "user": "bob", "priority": 9, "command": "x",
                  "resources": {"cpu": "4", "memory": "1Gi"}}))
    h.run(Submit({"name": "prod2", "user": "bob", "priority": 9, "command": "x",
                  "resources": {"cpu": "4", "memory": "1Gi"}}))
    return h.schedule()


def _lose_machine(h):
    # The alloc's machine is lost, and the other one too: nowhere to place the alloc again yet.
    lost = h.task("web-allocs").machine
    h.run(MachineDown(lost))
    h.run(MachineDown({"m1": "m2", "m2": "m1"}[lost]))


# What happens to a task in an alloc, and to the alloc, when one of them stops:
# (case, what happens, the task's state after, its alloc's state after, words in the task's last note)
LEAVING = [
    ("a task that finishes leaves its alloc holding its room", _agent_says("finished"), D, R, "exit code"),
    ("a task killed on its machine goes back into the same alloc", _agent_says("killed"), R, R, "in alloc"),
    ("a task its agent gave up on is placed again in its alloc (index)", _agent_says("failed"), R, R, "in alloc"),
    ("an alloc preempted by production work takes its task with it", _preempt, P, P, "was preempted"),
    ("a lost machine takes the alloc and its task", _lose_machine, P, P, "stopped answering"),
    ("killing the alloc set kills the job in it", lambda h: h.run(Kill("web-allocs.alice")), D, D, "alloc set web-allocs was killed"),
]


@pytest.mark.parametrize("case,act,task_state,alloc_state,note", LEAVING, ids=[c[0] for c in LEAVING])
def test_what_happens_to_a_task_in_an_alloc_when_it_or_its_alloc_stops(h, case, act, task_state, alloc_state, note):
    h.run(Submit(allocset(count=1, cpu="3", priority=1)))
    h.schedule()
    h.run(Submit(member("web", cpu="1", priority=1)))
    h.schedule()
    alloc = h.task("web-allocs")
    machine = alloc.machine
    act(h)
    h.schedule()
    web = h.task("web")
    assert (web.state, alloc.state) == (task_state, alloc_state)
    if alloc.state is R:
        assert alloc.machine == machine, "an alloc that stays keeps its machine"
        view = h.state.view
        assert int(view.free[view.index[machine], 0]) == 1000, "the alloc still holds its 3 cores, the task none"
    if web.state is R:
        assert web.alloc == alloc.name and web.machine == machine
    notes = " ".join(t.note for t in web.history[-3:])
    assert note in notes, notes
    same_after_replay(h)
