"""Opportunistic tasks on the agent: evicted first, the lowest CPU weight, upgraded in place without a restart."""

from __future__ import annotations

from corral.agent import opportunistic
from corral.agent import supervisor as sv
from corral.agent.eviction import Candidate, MemoryReading, choose_victims
from corral.agent.isolation import Sandbox, limits_for
from corral.agent.launch import parse_launch

from tests.agent.conftest import wait_until
from tests.agent.test_api import client, make_agent, states, task  # noqa: F401 (make_agent: a fixture)
from tests.agent.test_machine_queue import agent, run
from tests.agent.test_supervisor import spawns

GiB = 2**30


def launch(task_id="t", opportunistic=True, generation=1, **fields):
    return parse_launch({"task_id": task_id, "generation": generation, "command": "sleep", "args": ["60"],
                         "resources": {"cpu": 1000, "memory": GiB}, "opportunistic": opportunistic,
                         "restart": {"max_failures": 3, "backoff_s": 1}, **fields})


def test_an_opportunistic_task_gets_the_lowest_cpu_weight_and_a_regular_one_its_own():
    opp, regular = limits_for(launch(opportunistic=True)), limits_for(launch(opportunistic=False))
    assert (opp.cpu_weight, opp.cpu_shares) == (1, 2)
    assert (regular.cpu_weight, regular.cpu_shares) == (100, 1024)  # one core's worth
    assert (opp.cpu_quota_us, opp.memory_bytes) == (regular.cpu_quota_us, regular.memory_bytes)  # its own caps


def test_memory_pressure_evicts_opportunistic_work_before_any_regular_task_whatever_its_priority():
    reading = MemoryReading(total_bytes=16 * GiB, available_bytes=GiB)  # 94 % in use
    candidates = [Candidate("best-effort", priority=0, memory_bytes=4 * GiB, started_at=1),
                  Candidate("opp-prod-job", priority=10, memory_bytes=GiB, started_at=2, opportunistic=True),
                  Candidate("batch", priority=4, memory_bytes=4 * GiB, started_at=3)]
    assert choose_victims(reading, 0.9, candidates) == ["opp-prod-job"]
    assert choose_victims(reading, 0.9, candidates[:1] + candidates[2:]) == ["best-effort"]  # then as before


def test_the_same_launch_without_the_flag_upgrades_a_running_task_in_place():
    _, m = agent()
    (spawn,) = spawns(m.handle(sv.Launch(launch())))
    attempt = spawn.attempt
    m.handle(sv.Started("t", attempt, 100))
    out = m.handle(sv.Launch(launch(opportunistic=False)))
    assert out == [sv.Relimit("t", attempt)]  # its sandbox gets a regular weight; no spawn, no signal
    rec = m.tasks["t"]
    assert rec.state == sv.RUNNING and rec.pid == 100 and rec.attempt == attempt and not rec.launch.opportunistic
    assert m.handle(sv.Launch(launch(opportunistic=False))) == []  # again: idempotent


def test_a_launch_of_the_same_generation_that_changes_more_than_the_flag_is_still_ignored():
    _, m = agent()
    (spawn,) = spawns(m.handle(sv.Launch(launch())))
    m.handle(sv.Started("t", spawn.attempt, 100))
    assert m.handle(sv.Launch(launch(opportunistic=False, args=["1"]))) == []
    assert m.tasks["t"].launch.opportunistic


def test_an_upgrade_in_back_off_or_in_the_queue_is_kept_for_its_next_spawn():
    clock, m = agent()
    (spawn,) = spawns(m.handle(sv.Launch(launch())))
    m.handle(sv.Started("t", spawn.attempt, 100))
    m.handle(sv.Exited("t", spawn.attempt, 1))
    assert m.tasks["t"].state == sv.BACKOFF
    assert m.handle(sv.Launch(launch(opportunistic=False))) == []  # no process to rewrite
    clock.now += 1
    (again,) = spawns(m.handle(sv.Tick()))
    assert not again.launch.opportunistic and limits_for(again.launch).cpu_weight == 100
    _, q = agent()
    run(q, "a", 100)
    run(q, "b", 101)
    q.handle(sv.Launch(launch("w", queued=True)))
    assert q.handle(sv.Launch(launch("w", opportunistic=False, queued=True))) == []
    assert q.tasks["w"].state == sv.QUEUED and not q.tasks["w"].launch.opportunistic and q.queue == ["w"]


def test_the_upgrade_writes_the_weight_alone_leaving_a_cap_written_since(tmp_path):
    unified = tmp_path / "v2"
    unified.mkdir()
    (unified / "cpu.weight").write_text("1")
    (unified / "cpu.max").write_text("50000 100000")  # a reclaimed-room cap the weight must not undo
    box = Sandbox("k", limits_for(launch()), {"unified": unified})
    assert opportunistic.write_weight(None, box, limits_for(launch(opportunistic=False)))
    assert (unified / "cpu.weight").read_text() == "100" and (unified / "cpu.max").read_text() == "50000 100000"
    assert box.limits.cpu_weight == 100
    v1 = tmp_path / "cpu"
    v1.mkdir()
    box1 = Sandbox("k", limits_for(launch()), {"cpu": v1, "memory": tmp_path})
    assert opportunistic.write_weight(None, box1, limits_for(launch(opportunistic=False)))
    assert (v1 / "cpu.shares").read_text() == "1024"
    assert not opportunistic.write_weight(None, Sandbox("k", limits_for(launch()), {}), limits_for(launch()))


def test_a_live_agent_upgrades_an_opportunistic_task_without_restarting_it(make_agent):
    live = make_agent()
    with client(live) as c:
        assert c.put("/v1/tasks/t1", json=task("t1", opportunistic=True)).status_code == 200
        wait_until(lambda: states(c).get("t1") == "running", 5, "t1 to run")
        (before,) = c.get("/v1/state").json()["tasks"]
        assert before["opportunistic"] is True
        assert c.put("/v1/tasks/t1", json=task("t1")).status_code == 200  # the same generation, no flag
        (after,) = c.get("/v1/state").json()["tasks"]
        assert after["opportunistic"] is False and after["pid"] == before["pid"] and after["state"] == "running"
        box = next(iter(live.runner.procs.values())).box
        if box.dirs:  # control groups here: the weight was written (rlimit isolation has none)
            assert box.limits.cpu_weight == limits_for(parse_launch(task("t1"))).cpu_weight
