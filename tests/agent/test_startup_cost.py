"""The start-up cost the agent measures: from the spawn asked for to the process running, first attempt only."""

from __future__ import annotations

from corral.agent import supervisor as sv

from tests.agent.test_machine_queue import agent, launch, run
from tests.agent.test_supervisor import spawns


def test_the_first_start_costs_the_seconds_from_the_launch_to_the_process_running():
    clock, m = agent()
    (spawn,) = spawns(m.handle(sv.Launch(launch("t"))))
    assert m.tasks["t"].startup_s is None  # not known before the process exists
    clock.now += 2.5  # sandbox, cgroup, user, exec
    m.handle(sv.Started("t", spawn.attempt, 100))
    assert m.tasks["t"].startup_s == 2.5


def test_a_restart_after_a_failure_keeps_the_first_starts_cost():
    clock, m = agent()
    (spawn,) = spawns(m.handle(sv.Launch(launch("t"))))
    clock.now += 2.0
    m.handle(sv.Started("t", spawn.attempt, 100))
    clock.now += 10
    m.handle(sv.Exited("t", spawn.attempt, 1))  # failure 1: back-off 1 s
    clock.now += 1
    (again,) = spawns(m.handle(sv.Tick()))
    clock.now += 0.25
    m.handle(sv.Started("t", again.attempt, 101))
    assert m.tasks["t"].state == sv.RUNNING and m.tasks["t"].startup_s == 2.0


def test_a_queued_tasks_cost_starts_when_it_leaves_the_queue_not_when_it_arrived():
    clock, m = agent()
    a = run(m, "a", 100)
    run(m, "b", 101)
    m.handle(sv.Launch(launch("q", queued=True)))
    clock.now += 30  # waiting in the queue: the wait's part, not the start's
    (spawn,) = spawns(m.handle(sv.Exited("a", a, 0)))
    clock.now += 0.5
    m.handle(sv.Started("q", spawn.attempt, 102))
    assert m.tasks["q"].startup_s == 0.5


def test_a_new_generation_measures_its_own_first_start():
    clock, m = agent()
    (first,) = spawns(m.handle(sv.Launch(launch("t", generation=1))))
    clock.now += 3
    m.handle(sv.Started("t", first.attempt, 100))
    m.handle(sv.Launch(launch("t", generation=2)))  # replaces it: SIGTERM first
    clock.now += 1
    (second,) = spawns(m.handle(sv.Exited("t", first.attempt, -15)))
    clock.now += 0.75
    m.handle(sv.Started("t", second.attempt, 101))
    assert m.tasks["t"].launch.generation == 2 and m.tasks["t"].startup_s == 0.75
