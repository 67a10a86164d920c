"""Preemption: when no machine fits, evict the cheapest set of lower-priority tasks.

Candidates are machines where the task would fit in what is *available at
its priority* (free plus what preemptible tasks hold; one vector operation).
On each, victims are taken lowest priority first (larger first within a
priority) until the task fits, then any victim that was not needed after all
is spared. The machine with the cheapest victims wins: fewest victims, then
lowest highest-victim priority, then lowest priority sum (opportunistic victims
aside: fewest regular victims comes first). A task never
evicts equal or higher priority, production never evicts production, and
tasks placed earlier in the same pass are never victims.

Opportunistic tasks (Apollo; ``TaskRequest.opportunistic``, run beyond their
user's quota) sit below every band: they are placed at priority 0, so every
task that may preempt at all may evict them, and they are taken first, before
any regular task of any priority, and cost least (:func:`victim_level` -1).
They preempt nothing themselves; best-effort work, which preempts no regular
task, may evict them (``CellView.available_to``).
"""

from __future__ import annotations

import numpy as np

from corral.model.priority import band_of, is_production, preemptible_below
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.request import PlacedTask, TaskRequest


def victim_level(task: PlacedTask) -> int:
    """How dear a victim is: its priority, or -1 for an opportunistic task (below every band)."""
    return -1 if task.request.opportunistic else task.priority


def why_no_preemption(req: TaskRequest, enabled: bool = True) -> str:
    if not enabled:
        return "Preemption is off"
    if req.opportunistic:
        return "An opportunistic task uses idle room only and preempts nothing"
    if preemptible_below(req.priority) == 0:  # (but opportunistic tasks, where they hold enough)
        return f"Priority {req.priority} ({band_of(req.priority).value}) cannot preempt"
    if is_production(req.priority):
        return "Preemption cannot help: evicting all batch and best-effort work would not make room (production does not preempt production)"
    return f"Preemption cannot help: evicting all tasks below priority {req.priority} would not make room"


def _fits(view: CellView, policy, req: TaskRequest, machine: int, free: np.ndarray, gpu_idle: np.ndarray,
          room: np.ndarray) -> tuple[bool, float]:
    feasible, score = policy.evaluate(EvalContext(view, req, np.array([machine]), free=free[None, :],
                                                  gpu_idle=gpu_idle[None, :], room=room[None, :]))
    return bool(feasible[0]), float(score[0])


def _victims_on(view, policy, req, machine, candidates: list[PlacedTask]):
    free = view.free[machine].copy()
    gpu_idle = view.gpu_idle[machine].copy()
    room = view.reclaim_room(machine).copy()  # reclamation: a victim gives back its reservation
    chosen: list[PlacedTask] = []
    fits, score = _fits(view, policy, req, machine, free, gpu_idle, room)
    for victim in candidates:
        if fits:
            break
        free += victim.request.vector
        room += victim.reservation
        gpu_idle[list(victim.gpus)] += victim.request.gpu_milli
        chosen.append(victim)
        fits, score = _fits(view, policy, req, machine, free, gpu_idle, room)
    if not fits:
        return None
    # Spare the victims that were not needed after all, most valuable first.
    for victim in sorted(chosen, key=lambda t: -victim_level(t)):
        trial_free = free - victim.request.vector
        trial_room = room - victim.reservation
        trial_gpu = gpu_idle.copy()
        trial_gpu[list(victim.gpus)] -= victim.request.gpu_milli
        ok, trial_score = _fits(view, policy, req, machine, trial_free, trial_gpu, trial_room)
        if ok:
            chosen.remove(victim)
            free, gpu_idle, room, score = trial_free, trial_gpu, trial_room, trial_score
    return chosen, score


def find_preemption(view: CellView, policy, req: TaskRequest, this_pass: object, max_candidates: int):
    """``(machine, victims, score)`` for the cheapest eviction that makes room for ``req``, or None."""
    below = preemptible_below(req.priority)
    if req.opportunistic or below == 0 and not view.opportunistic.any():
        return None
    only_opportunistic = below == 0  # best-effort work: opportunistic tasks are all it may evict
    everything = np.arange(len(view))
    # Optimistic screen: every preemptible resource given back, every GPU idle.
    feasible, _ = policy.evaluate(
        EvalContext(view, req, everything, free=view.available_to(req), gpu_idle=view.gpu_idle_when_empty)
    )
    candidates = everything[feasible]
    if not len(candidates):
        return None
    # Machines with the least preemptible work to disturb first.
    disturbed = (view.opportunistic[candidates].sum(axis=1) if only_opportunistic
                 else view.used[:below, candidates].sum(axis=(0, 2)))
    candidates = candidates[np.lexsort((view.rank[candidates], disturbed))][:max_candidates]
    best = None
    for machine in candidates:
        pool = sorted(
            (t for t in view.tasks[machine].values() if t.plan is not this_pass
             and (t.request.opportunistic if only_opportunistic else t.priority < below)),
            key=lambda t: (victim_level(t), -float((t.request.vector / np.maximum(view.capacity[machine], 1)).sum())),
        )
        found = _victims_on(view, policy, req, int(machine), pool)
        if found is None:
            continue
        victims, score = found
        # Fewest regular victims first (opportunistic work goes before anything else; with none among
        # the victims this is the count of victims, as it always was).
        regular = sum(1 for v in victims if not v.request.opportunistic)
        cost = (regular, len(victims), max((victim_level(v) for v in victims), default=-2),
                sum(victim_level(v) for v in victims), -score)
        if best is None or cost < best[0]:
            best = (cost, int(machine), victims, score)
            if cost[1] == 0:
                break
    if best is None:
        return None
    return best[1], best[2], best[3]
