"""``corral sim colocate``'s view of the machines at a sample: what the agent's colocation policy and
memory check make of the tasks' use (corral/agent), and the master's limits and reservations."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

from corral.agent.colocation import ColocationConfig, ColocationPolicy, TaskCpu
from corral.agent.eviction import Candidate, MemoryReading, choose_victims
from corral.model.resources import CPU, MEMORY
from corral.sim.replay import Replay
from corral.sim.trace import Trace, TraceJob
from corral.sim.traces.synthetic import usage_at

MEMORY_THRESHOLD = 0.95  # the agent's default memory pressure threshold
SHARES = ("cpu_limits", "cpu_usage", "memory_limits", "memory_usage")


def is_online(job: TraceJob) -> bool:
    return job.appclass == "latency-sensitive"


class MachineModel:
    """One sample of every machine: the agent's colocation policy and memory check on what the tasks
    use at that time, with the master's CPU allowances of reclaimed tasks."""

    def __init__(self, trace: Trace, clock: Callable[[], float]):
        self.capacity = {m.name: (m.cpu, m.memory) for m in trace.machines}
        self.clock = clock
        self.policies: dict[str, ColocationPolicy] = {}

    def policy(self, machine: str) -> ColocationPolicy:
        policy = self.policies.get(machine)
        if policy is None:
            policy = self.policies[machine] = ColocationPolicy(
                ColocationConfig(capacity_milli=self.capacity[machine][0]), self.clock)
        return policy

    def sample(self, running: dict[str, tuple[str, int, TraceJob]], now: float,
               reclaimed: dict[str, bool] | None = None,
               allowed: dict[str, dict[str, int]] | None = None) -> tuple[dict[str, float], int]:
        """``running``: task -> (machine, generation, job); ``reclaimed``: the tasks placed in reclaimed
        room; ``allowed``: machine -> task -> the CPU the master lets a reclaimed task use."""
        reclaimed, allowed = reclaimed or {}, allowed or {}
        by_machine: dict[str, list[tuple[str, TraceJob]]] = defaultdict(list)
        for task, (machine, _, job) in running.items():
            by_machine[machine].append((task, job))
        totals = dict.fromkeys(("busy_cpu", "ls_demand", "ls_got", "batch_demand", "batch_got", "batch_reclaimed_got",
                                "short", "throttled", "busy_memory", "used_memory", "memory_over"), 0.0)
        for key in SHARES:
            totals[f"ls_{key}"] = totals[f"all_{key}"] = 0.0
        evictions = 0
        for machine in sorted(by_machine):
            tasks = by_machine[machine]
            cpu, memory = self.capacity[machine]
            use = {task: usage_at(job, now) for task, job in tasks}
            decision = self.policy(machine).decide(
                [TaskCpu(task, is_online(job), job.cpu, use[task][0]) for task, job in tasks])
            master = allowed.get(machine, {})
            ls_demand = sum(use[t][0] for t, j in tasks if is_online(j))
            batch_demand = sum(use[t][0] for t, j in tasks if not is_online(j))
            capped = {t: min(use[t][0], decision.caps.get(t) or j.cpu, master.get(t, j.cpu))
                      for t, j in tasks if not is_online(j)}
            batch_capped = sum(capped.values())
            ls_got = min(ls_demand, cpu)
            batch_got = min(batch_capped, cpu - ls_got)
            on_reclaimed = sum(c for t, c in capped.items() if reclaimed.get(t))
            totals["busy_cpu"] += cpu
            totals["ls_demand"] += ls_demand
            totals["ls_got"] += ls_got
            totals["batch_demand"] += batch_demand
            totals["batch_got"] += batch_got
            totals["batch_reclaimed_got"] += batch_got * on_reclaimed / batch_capped if batch_capped else 0.0
            totals["short"] += ls_got < ls_demand
            totals["throttled"] += batch_demand - batch_got
            used = sum(use[t][1] for t, _ in tasks)
            totals["busy_memory"] += memory
            totals["used_memory"] += used
            totals["memory_over"] += used > memory
            for t, j in tasks:
                for key, value in (("cpu_limits", j.cpu), ("cpu_usage", capped.get(t, use[t][0])),
                                   ("memory_limits", j.memory), ("memory_usage", use[t][1])):
                    totals[f"all_{key}"] += value
                    if is_online(j):
                        totals[f"ls_{key}"] += value
            reading = MemoryReading(memory, max(memory - used, 0))
            candidates = [Candidate(t, j.priority, use[t][1], 0.0, is_online(j)) for t, j in tasks]
            evictions += sum(1 for t in choose_victims(reading, MEMORY_THRESHOLD, candidates)
                             if not is_online(dict(tasks)[t]))
        totals["busy_machines"] = len(by_machine)
        return totals, evictions


def reservations(sim: Replay, now: float) -> tuple[int, float, float]:
    """The master's reservations of the running tasks, from its reservation book (a task's limit until a
    usage report of its placement): (tasks whose use at ``now`` is above what is reserved for them, in
    cpu or memory, among those a report gave a reservation; reserved cpu; reserved memory)."""
    book, state = sim.core.reservations, sim.core.state
    below, cpu_sum, memory_sum = 0, 0, 0
    for task, (_, _, job) in sim.agents.running.items():
        reserved = book.reservation_of(state.tasks[task])
        cpu_sum, memory_sum = cpu_sum + int(reserved[0]), memory_sum + int(reserved[1])
        if task in book.usage:
            cpu, memory = usage_at(job, now)
            below += bool(cpu > reserved[0] or memory > reserved[1])
    return below, float(cpu_sum), float(memory_sum)


def limits(sim: Replay) -> tuple[float, float]:
    """The limits (cpu, memory) of the tasks on the machines with tasks, as the cell view holds them."""
    view = sim.core.state.view
    rows = [view.index[m] for m in sim.agents.on]
    if not rows:
        return 0.0, 0.0
    held = (view.capacity[rows] - view.free[rows]).sum(axis=0)
    return float(held[CPU]), float(held[MEMORY])


