"""A hypothesis property of reclamation through the real master core: over random streams of
submissions, usage changes, time and scheduling rounds, production tasks never find less than their
limit available because of work placed in reclaimed room (once the eviction step of the usage report
that raised their reservation ran), and production is never placed in reclaimed room."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from corral.master.commands import Kill, UsageReport
from corral.master.reclamation import MIN_CPU_MILLI
from corral.model.job import TaskState
from corral.model.resources import CPU, MEMORY
from tests.master.helpers import Harness

GiB = 2**30
MACHINES = {"m1": (4000, 8 * GiB), "m2": (4000, 8 * GiB)}

production = st.tuples(st.just("submit"), st.just(True), st.integers(1, 4), st.integers(1, 2), st.integers(2, 4))
batch = st.tuples(st.just("submit"), st.just(False), st.integers(1, 4), st.integers(1, 2), st.integers(1, 3))
usage = st.tuples(st.just("usage"), st.integers(0, 50), st.sampled_from([0.05, 0.3, 1.0]),
                  st.sampled_from([0.05, 0.5, 1.0]))
time_passes = st.tuples(st.just("time"), st.sampled_from([30.0, 120.0, 400.0]))
rounds = st.just(("round",))
kill = st.tuples(st.just("kill"), st.integers(0, 50))
surge = st.tuples(st.just("surge"), st.sampled_from(sorted(MACHINES)))  # a machine's production uses its limits
# A stream starts with production work that has run quietly long enough for its reservations to
# decay (so there is room to reclaim) and batch work placed after it, then anything: more work of either band, usage rising and
# falling, time, rounds, kills.
PRELUDE = st.tuples(st.lists(production, min_size=1, max_size=3), batch).map(
    lambda p: p[0] + [("round",), ("time", 30.0), ("time", 400.0), p[1], ("round",)])
OPS = st.tuples(PRELUDE, st.lists(st.one_of(production, batch, batch, usage, usage, surge, time_passes, rounds,
                                            rounds, kill), min_size=3, max_size=30)).map(lambda p: p[0] + p[1])


class Cell:
    def __init__(self):
        self.h = Harness()
        for name, (cpu, memory) in MACHINES.items():
            self.h.machine(name, cpu=f"{cpu}m", memory=str(memory))
        self.jobs: list[str] = []
        self.used: dict[tuple[str, int], tuple[int, int]] = {}  # (task, generation) -> cpu, memory used

    def running(self, machine: str | None = None):
        return [t for t in self.h.state.tasks.values()
                if t.state is TaskState.RUNNING and (machine is None or t.machine == machine)]

    def report(self, machine: str) -> None:
        usage = {}
        for t in self.running(machine):
            cpu, memory = self.used.get((t.name, t.generation), (100, 256 * 2**20))
            usage[t.name] = (t.generation, cpu, memory)
        self.h.run(UsageReport(machine, usage))
        self.check(after_report=machine)

    def do(self, op) -> None:
        h = self.h
        if op[0] == "submit":
            _, prod, tasks, cpu, memory = op
            name = f"j{len(self.jobs)}"
            h.submit(name, tasks=tasks, cpu=str(cpu), memory=f"{memory}Gi", priority=9 if prod else 2)
            self.jobs.append(f"{name}.alice")
        elif op[0] == "usage":
            running = self.running()
            if not running:
                return
            t = running[op[1] % len(running)]
            limit = t.request.vector
            self.used[(t.name, t.generation)] = (int(limit[CPU] * op[3]), int(limit[MEMORY] * op[2]))
            self.report(t.machine)
        elif op[0] == "surge":
            for t in self.running(op[1]):
                if t.request.priority >= 9:
                    limit = t.request.vector
                    self.used[(t.name, t.generation)] = (int(limit[CPU]), int(limit[MEMORY]))
            self.report(op[1])
        elif op[0] == "time":
            h.clock.advance(op[1])
            for machine in MACHINES:
                self.report(machine)
        elif op[0] == "round":
            h.schedule()
        elif op[0] == "kill" and self.jobs:
            job = self.jobs[op[1] % len(self.jobs)]
            if not h.state.jobs[job].state.ended:
                h.run(Kill(job))
        self.check()

    def check(self, after_report: str | None = None) -> None:
        state, book = self.h.state, self.h.core.reservations
        for name, (cpu_cap, memory_cap) in MACHINES.items():
            tasks = self.running(name)
            assert not any(t.reclaimed and t.request.priority >= 9 for t in tasks), "production in reclaimed room"
            limits = sum((t.request.vector for t in tasks if not t.reclaimed), np.zeros(4, dtype=np.int64))
            assert limits[CPU] <= cpu_cap and limits[MEMORY] <= memory_cap, "work placed against limits over-commits"
            reserved = {t.name: book.reservation_of(t) for t in tasks}
            # Memory (not compressible): what the others reserve leaves every production task what it
            # reserves, which is its limit as soon as its usage reaches it.
            for p in tasks:
                if p.request.priority < 9:
                    continue
                others = sum(int(reserved[q.name][1]) for q in tasks if q is not p)
                assert memory_cap - others >= reserved[p.name][1], f"{p.name} is short of its reserved memory"
                used = self.used.get((p.name, p.generation))
                if used is not None and used[1] == p.request.vector[MEMORY] and p.name in book.usage:
                    assert memory_cap - others >= p.request.vector[MEMORY], f"{p.name} is short of its limit"
            # CPU (compressible): after a report, the reclaimed tasks are capped to what the others'
            # reservations leave (or the floor when nothing is left).
            if after_report == name:
                allowed = book.throttled.get(name, {})
                assert set(allowed) == {t.name for t in tasks if t.reclaimed}
                room = cpu_cap - sum(int(reserved[t.name][0]) for t in tasks if not t.reclaimed)
                assert sum(allowed.values()) <= max(room, MIN_CPU_MILLI * len(allowed))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_production_never_finds_less_than_its_limit_because_of_reclaimed_placements(ops):
    cell = Cell()
    for op in ops:
        cell.do(op)


def test_the_stream_does_reach_reclaimed_room_and_evict_from_it():
    """The property's streams are not vacuous: this one places in reclaimed room and evicts from it."""
    cell = Cell()
    ops = [("submit", True, 2, 2, 3), ("round",)]
    ops += [("usage", i, 0.05, 0.05) for i in range(2)] + [("time", 400.0)]
    ops += [("submit", False, 4, 1, 2), ("round",), ("usage", 0, 1.0, 1.0), ("usage", 1, 1.0, 1.0)]
    placed_reclaimed = evicted = False
    for op in ops:
        cell.do(op)
        placed_reclaimed |= any(t.reclaimed for t in cell.running())
        evicted |= any(t.history and t.history[-1].note.endswith("needed its reserved memory")
                       for t in cell.h.state.tasks.values())
    assert placed_reclaimed and evicted
