"""Machine queues on the master (Apollo): queue on the soonest machine, reasons, quota, moves, starts."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, KillTask, StartTask, Tick
from corral.master.core import MasterCore
from corral.master.errors import AdmissionError
from corral.master.quota import Quotas
from corral.master.queue_placement import MachineQueueConfig
from corral.model.job import TaskState

from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
ON = MachineQueueConfig(enabled=True, max_length=2, move_min_s=30.0)


def cell(waits=None, config=ON, **args) -> Harness:
    """Two 4-cpu machines each full with one 4-cpu task; ``waits``: machine -> expected wait (s)."""
    wait = (lambda m, r, until=None: waits[m]) if waits is not None else None
    h = Harness(machine_queues=config, expected_wait=wait, **args)
    for m in ("m1", "m2"):
        h.machine(m)
    h.submit("big", tasks=2, cpu="4")
    h.schedule()
    assert {h.task("big", i).machine for i in (0, 1)} == {"m1", "m2"}
    return h


def queued_on(h: Harness, job: str = "b", index: int = 0) -> list[str]:
    return sorted(h.state.machine_queues.copies(h.task(job, index).name))


def status(h: Harness, job: str, state: str, machine: str, index: int = 0, **fields) -> dict:
    copy = h.state.machine_queues.copy(h.task(job, index).name, machine)
    generation = copy.generation if copy else h.task(job, index).generation
    return {"task_id": h.task(job, index).name, "generation": generation, "state": state, **fields}


def test_a_batch_task_that_fits_nowhere_is_queued_on_the_machine_where_it_starts_soonest():
    h = cell({"m1": 40.0, "m2": 10.0})
    h.submit("b", cpu="1")
    out = h.schedule()
    assert queued_on(h) == ["m2"] and h.task("b").state is P
    (start,) = [e for e in out.effects if isinstance(e, StartTask)]
    assert start.machine == "m2" and start.launch["queued"] is True
    assert start.launch["generation"] == h.task("b").generation + 1
    assert [e.TYPE for e in out.events] == ["task_queued"]


def test_the_pending_reason_says_where_it_is_queued_and_when_it_should_start():
    h = cell({"m1": 40.0, "m2": 90.0})
    h.submit("b", cpu="1")
    h.schedule()
    assert h.core.pending_reason(h.task("b"))[0] == "queued on m1, expected start in 40 s"
    h.clock.advance(15)
    assert h.core.pending_reason(h.task("b"))[0] == "queued on m1, expected start in 25 s"


def test_the_default_estimate_uses_the_running_tasks_runtime_and_the_queue_ahead():
    h = cell(None)  # RuntimeWait: 60 s per task unless its spec says
    h.clock.advance(20)
    h.submit("b", tasks=3, cpu="4")
    h.schedule()
    copies = [h.state.machine_queues.copies(h.task("b", i).name) for i in range(3)]
    waits = sorted(c.expected_wait_s for cs in copies for c in cs.values())
    # big's tasks end at 60 s (40 s from now); the third waits behind one queued b as well (60 s more)
    assert waits == [40.0, 40.0, 100.0]


def test_production_and_latency_sensitive_work_never_waits_in_a_machine_queue():
    h = cell({"m1": 1.0, "m2": 1.0})
    h.submit("ls", cpu="1", appclass="latency-sensitive")
    h.schedule()
    assert h.task("ls").state is P and h.state.machine_queues.by_task == {}
    h.submit("prod", tasks=3, cpu="4", priority=9)  # two preempt big's tasks; the third fits nowhere
    out = h.schedule()
    assert h.state.machine_queues.by_task == {} and "task_queued" not in [e.TYPE for e in out.events]
    assert not any(isinstance(e, StartTask) and e.launch.get("queued") for e in out.effects)
    assert h.task("prod", 2).state is P


def test_off_by_default_no_task_is_ever_queued():
    h = cell({"m1": 1.0, "m2": 1.0}, config=MachineQueueConfig())
    h.submit("b", cpu="1")
    out = h.schedule()
    assert h.state.machine_queues.by_task == {} and "queued" not in out.reply


def test_a_full_queue_takes_no_more():
    h = cell({"m1": 5.0, "m2": 50.0})
    h.submit("b", tasks=5, cpu="1")
    h.schedule()
    lengths = {m: h.state.machine_queues.length(m) for m in ("m1", "m2")}
    assert lengths == {"m1": 2, "m2": 2}
    assert sum(1 for i in range(5) if not queued_on(h, "b", i)) == 1


def test_queued_work_counts_in_quota():
    quotas = Quotas.parse({"alice": {"batch": {"cpu": 10, "memory": "100Gi"}}})
    h = cell({"m1": 5.0, "m2": 5.0}, quotas=quotas)
    h.submit("b", cpu="1")
    h.schedule()
    assert queued_on(h) == ["m1"]
    with pytest.raises(AdmissionError) as e:  # 8 running + 1 queued + 2 asked > 10
        h.submit("more", tasks=2, cpu="1")
    assert "quota.batch.cpu" in str(e.value.errors)


def test_the_first_start_report_wins_and_the_other_copy_is_cancelled():
    waits = {"m1": 10.0, "m2": 100.0}
    h = cell(waits)
    h.submit("b", cpu="1")
    h.schedule()
    waits["m1"] = 500.0  # the wait where it queued grew: at the next tick a copy goes to m2
    h.clock.advance(60)
    waits["m2"] = 20.0
    out = h.run(Tick())
    assert queued_on(h) == ["m1", "m2"] and any(isinstance(e, StartTask) and e.machine == "m2" for e in out.effects)
    # m2's running task ends and its agent starts the queued copy at once: one report says both
    big_on_m2 = next(t for t in h.state.tasks.values() if t.job == "big.alice" and t.machine == "m2")
    report = [status(h, "b", "running", "m2", pid=7),
              {"task_id": big_on_m2.name, "generation": big_on_m2.generation, "state": "finished", "exit_code": 0}]
    out = h.run(AgentReport("m2", report, full=False))
    assert h.task("b").state is R and h.task("b").machine == "m2" and queued_on(h) == []
    kills = [e for e in out.effects if isinstance(e, KillTask)]
    assert [(k.machine, k.reason) for k in kills] == [("m1", "started on m2 first")]
    # the loser had started too before its cancel arrived: its start is killed, its end never counts
    late = {"task_id": h.task("b").name, "generation": h.task("b").generation, "state": "finished", "exit_code": 0}
    out = h.run(AgentReport("m1", [late], full=True))
    assert h.task("b").state is R and not [e for e in out.events if e.TYPE == "task_ended"]
    finish = dict(late)
    h.run(AgentReport("m2", [finish], full=False))
    ends = [t for t in h.task("b").history if t.via == "finish"]
    assert h.task("b").state is D and len(ends) == 1 and ends[0].machine == "m2"


def test_no_move_while_the_wait_holds_or_no_machine_is_much_better():
    waits = {"m1": 10.0, "m2": 100.0}
    h = cell(waits)
    h.submit("b", cpu="1")
    h.schedule()
    h.clock.advance(5)
    h.run(Tick())
    assert queued_on(h) == ["m1"]
    waits["m1"] = 200.0  # slipped, but m2 is no better by move_min_s
    waits["m2"] = 190.0
    h.run(Tick())
    assert queued_on(h) == ["m1"]


def test_a_start_with_no_room_left_in_the_masters_view_is_refused_and_the_copy_killed():
    h = cell({"m1": 10.0, "m2": 10.0})
    h.submit("b", cpu="1")
    h.schedule()
    out = h.run(AgentReport("m1", [status(h, "b", "running", "m1", pid=9)], full=False))
    assert h.task("b").state is P and queued_on(h) == []
    assert [e.machine for e in out.effects if isinstance(e, KillTask)] == ["m1"]
    assert [e.TYPE for e in out.events] == ["task_dequeued"]


def test_killing_the_job_cancels_its_queued_copies_and_a_full_report_of_them_keeps_them():
    h = cell({"m1": 10.0, "m2": 10.0})
    h.submit("b", cpu="1")
    h.schedule()
    out = h.run(AgentReport("m1", [status(h, "b", "queued", "m1")], full=True))
    assert queued_on(h) == ["m1"] and not [e for e in out.effects if isinstance(e, KillTask)]
    assert h.task("b").name in h.core.assignments("m1")
    from corral.master.commands import Kill
    out = h.run(Kill("b.alice"))
    assert [(e.machine, e.task) for e in out.effects if isinstance(e, KillTask)] == [("m1", h.task("b").name)]
    assert h.state.machine_queues.by_task == {}


def test_the_book_survives_a_rebuild_from_the_log_and_a_checkpoint():
    h = cell({"m1": 10.0, "m2": 30.0})
    h.submit("b", tasks=2, cpu="1")
    h.schedule()
    rebuilt = MasterCore.rebuild(h.store)
    assert rebuilt.to_dict() == h.state.to_dict() and rebuilt.machine_queues.to_dict()
    from corral.master.state import CellState
    again = CellState.from_dict(h.state.to_dict())
    assert again.machine_queues.to_dict() == h.state.machine_queues.to_dict()
