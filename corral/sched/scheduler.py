"""The scheduler: pending tasks in, a :class:`Plan` out. Pure: no I/O, no clock.

Flow for each run of identical tasks, in queue order (``queue.py``):

1. find the task's equivalence class (its :class:`TaskRequest`) and its state:
   cached per-machine feasibility and scores, valid while a machine's version
   is unchanged;
2. *relaxed randomization*: walk the machines in the class's seeded random
   order until ``sample_feasible`` feasible ones are found, keep them as the
   class's window, take the best (ties to the lowest rank); or, with it off,
   take the best of all machines;
3. place as many copies of the task on that machine as it still outranks the
   runner-up (one vectorised what-if evaluation, exact for machine-local
   policies);
4. if no machine fits, try preemption (``preempt.py``); if that fails too,
   explain why (``explain.py``).

``schedule`` updates the view it is given as it plans (hand it a snapshot).
"""

from __future__ import annotations

import gc
import heapq
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from corral.model.priority import preemptible_below
from corral.sched.cellview import CellView
from corral.sched.checkers.ports import pick_ports
from corral.sched.checkers.reclaim import against_limits, fits_against_limits, with_reclamation
from corral.sched.context import EvalContext
from corral.sched.explain import Explanation, explain
from corral.sched.gang import GangPlacement, GangReservations
from corral.sched.plan import Placement, Plan, Preemption
from corral.sched.policy import DEFAULT_POLICY, Policy, make_policy
from corral.sched.preempt import find_preemption, why_no_preemption
from corral.sched.queue import DEFAULT_USER_ORDER, UserOrder, make_user_order, queue_order
from corral.sched.request import PendingTask, PlacedTask, TaskRequest
from corral.sched.shares import ShareConfig


@dataclass(frozen=True)
class SchedulerConfig:
    policy: str = DEFAULT_POLICY
    seed: int = 0
    equivalence_classes: bool = True
    score_cache: bool = True
    relaxed_randomization: bool = True
    sample_feasible: int = 32  # "enough" feasible machines for relaxed randomization
    scan_chunk: int = 256  # machines evaluated at a time while looking for them
    user_quantum: int = 16  # tasks a user places per turn inside a band, at most
    queue_order: str = DEFAULT_USER_ORDER  # which user goes next inside a band: "drf" or "round-robin"
    # DRF: how far past the next user's dominant share one turn may take a user, as a share of the
    # cell (0: exact progressive filling; 0.1 % keeps runs of identical tasks long in big cells)
    fair_share_slack: float = 0.001
    preemption: bool = True
    reclamation: bool = True  # non-production work also against reservations (checkers/reclaim.py)
    preemption_candidates: int = 64  # machines whose victims are costed, at most
    cached_classes: int = 4096  # class states kept between passes (least recently used go first)
    gang_reserve_after: int | None = 3  # passes a gang fails before machines are reserved for it (gang.py; None: never)


class _ClassState:
    """What the scheduler knows about one equivalence class on one view lineage."""

    __slots__ = ("req", "ver", "feasible", "score", "order", "pos", "window", "exhausted", "no_preemption",
                 "explanation", "pass_token")

    def __init__(self, req: TaskRequest, machines: int, order: np.ndarray | None):
        self.req = req
        self.ver = np.full(machines, -1, dtype=np.int64)
        self.feasible = np.zeros(machines, dtype=bool)
        self.score = np.zeros(machines)
        self.order = order
        self.pass_token: object = None
        self.new_pass()

    def new_pass(self) -> None:
        self.pos = 0
        self.window = np.empty(0, dtype=np.int64)
        self.exhausted = False
        self.no_preemption = False
        self.explanation: Explanation | None = None


class Scheduler(GangPlacement):
    def __init__(self, config: SchedulerConfig | None = None, policy: Policy | None = None,
                 user_order: UserOrder | None = None, shares: ShareConfig | None = None):
        self.config = config or SchedulerConfig()
        policy = policy or make_policy(self.config.policy, self.config.seed)
        checkers = with_reclamation(policy.checkers, self.config.reclamation)  # a copy if it changes
        self.policy = policy if checkers == policy.checkers else replace(policy, checkers=checkers, _parts={})
        self.shares = shares or ShareConfig()
        self.user_order = user_order or make_user_order(self.config.queue_order, self.shares,
                                                        self.config.fair_share_slack)
        self._states: dict[object, _ClassState] = {}
        self._lineage: object = None
        self._machines = 0
        self._pass: object = None
        self._rng = np.random.default_rng(self.config.seed)
        self._cycle: np.ndarray | None = None
        self._possible: dict[tuple, np.ndarray] = {}  # machines that could ever hold a request
        self.stats = {"evaluations": 0, "cache_hits": 0}
        self._gangs = GangReservations(self.config.gang_reserve_after)

    # ---- the pass ----------------------------------------------------------------------------

    def schedule(self, view: CellView, pending: Sequence[PendingTask]) -> Plan:
        # A pass allocates a few small objects per task (placements, placed tasks) and no
        # reference cycles; the cyclic collector would re-walk the whole live cell every few
        # thousand of them. Reference counting still frees everything; cycle collection
        # resumes when the pass ends.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._schedule(view, pending)
        finally:
            if collecting:
                gc.enable()

    def _schedule(self, view: CellView, pending: Sequence[PendingTask]) -> Plan:
        if view.lineage is not self._lineage or len(view) != self._machines:
            self._states.clear()
            self._possible.clear()
            self._lineage, self._machines = view.lineage, len(view)
        self._this_pass: dict[int, _ClassState] = {}  # id(request) -> state; pending keeps them alive
        before = dict(self.stats)
        plan = Plan()
        # Marks the tasks this pass places (they are never its victims) and the class states it
        # has started: a class's per-pass state is reset when the pass first uses it, so a pass
        # costs nothing for classes it does not touch (the simulator asks about one task a time).
        this_pass = self._pass = object()
        gangs = self._gangs.begin(view, self.policy, pending)  # job -> its pending tasks, of each gang
        for run in queue_order(pending, self.config.user_quantum, self.user_order, view):
            if gangs:
                self._schedule_with_gangs(view, run, plan, this_pass, gangs)
            else:
                self._schedule_run(view, run, plan, this_pass)
        used = set(map(id, self._this_pass.values()))
        self._this_pass = {}
        if len(self._states) > self.config.cached_classes:
            # Forget classes this pass did not use, oldest first: a long-running master sees
            # many request shapes come and go, and each class state holds arrays over machines.
            for key in [k for k, s in self._states.items() if id(s) not in used]:
                if len(self._states) <= self.config.cached_classes:
                    break
                del self._states[key]
        plan.stats = {k: v - before[k] for k, v in self.stats.items()}
        plan.stats["classes"] = len(self._states)
        return plan

    def _state(self, view: CellView, task: PendingTask) -> _ClassState:
        # Jobs share one request object: look it up by identity first (cheap), then by value.
        state = self._this_pass.get(id(task.request)) if self.config.equivalence_classes else None
        if state is not None:
            return state
        key = task.request if self.config.equivalence_classes else task.id
        state = self._states.get(key)
        if state is None:
            if not self.config.equivalence_classes:
                order = np.arange(len(view))  # naive: every machine, every task
            else:
                # A class only ever looks at machines that could hold it when empty; classes
                # that differ only in priority or preferences share that answer.
                static_key = (task.request.resources, task.request.constraints)
                order = self._possible.get(static_key)
                if order is None:
                    order = self._possible[static_key] = np.flatnonzero(self.policy.could_ever_fit(view, task.request))
                if self.config.relaxed_randomization:
                    # Each class walks one seeded random cycle of the machines from its own
                    # random start: a random order per class for one permutation per view.
                    if self._cycle is None or len(self._cycle) != len(view):
                        self._cycle = self._rng.permutation(len(view))
                    cycle = np.roll(self._cycle, -int(self._rng.integers(len(view))))
                    possible = np.zeros(len(view), dtype=bool)
                    possible[order] = True
                    order = cycle[possible[cycle]]
            state = self._states[key] = _ClassState(task.request, len(view), order)
        if state.pass_token is not self._pass:
            state.new_pass()
            state.pass_token = self._pass
        self._this_pass[id(task.request)] = state
        return state

    def _schedule_run(self, view: CellView, run: list[PendingTask], plan: Plan, this_pass: object) -> None:
        i = 0
        while i < len(run):
            task = run[i]
            state = self._state(view, task)
            found = None if state.exhausted else self._candidates(view, state)
            if found is None:
                state.exhausted = True
                if not self._try_preemption(view, state, task, plan, this_pass):
                    plan.unplaced[task.id] = self._explain(view, state)
                i += 1
                continue
            idx, scores, evaluated = found
            for machine, copies, score, after in self._allocate(view, state, idx, scores, len(run) - i):
                self._place(view, run[i : i + copies], machine, score, evaluated, plan, this_pass)
                if after is not None:
                    # Write the machine's new state through to the cache: no re-evaluation next time.
                    state.feasible[machine], state.score[machine] = after
                    state.ver[machine] = view.version[machine]
                i += copies

    # ---- evaluation and choice -------------------------------------------------------------

    def _refresh(self, view: CellView, state: _ClassState, idx: np.ndarray) -> None:
        """Bring the cached feasibility and scores of machines ``idx`` up to date."""
        if self.config.score_cache:
            stale = idx[state.ver[idx] != view.version[idx]]
            self.stats["cache_hits"] += len(idx) - len(stale)
        else:
            stale = idx
        if len(stale):
            feasible, score = self.policy.evaluate_local(EvalContext(view, state.req, stale))
            state.feasible[stale] = feasible
            state.score[stale] = score
            state.ver[stale] = view.version[stale]
            self.stats["evaluations"] += len(stale)

    def _feasible_among(self, view: CellView, state: _ClassState, idx: np.ndarray):
        """Positions in ``idx`` of the feasible machines (cached checks plus the non-cacheable
        ones), in order, and their scores."""
        at = np.flatnonzero(state.feasible[idx])
        scores = state.score[idx[at]]
        if len(at) and not self.policy.parts(state.req).machine_local:
            feasible, extra = self.policy.evaluate_other(EvalContext(view, state.req, idx[at]))
            at, scores = at[feasible], scores[feasible] + extra[feasible]
        return self._gangs.keep_off_held(view, state.req, idx, at, scores)

    def _candidates(self, view: CellView, state: _ClassState):
        """Feasible machines to choose from and their scores, ``(idx, scores, evaluated)``, or None."""
        if self.config.relaxed_randomization:
            idx, scores = self._fill_window(view, state)
            evaluated = state.pos
        else:
            idx = state.order
            self._refresh(view, state, idx)
            at, scores = self._feasible_among(view, state, idx)
            idx, evaluated = idx[at], len(state.order)
        return (idx, scores, evaluated) if len(idx) else None

    def _fill_window(self, view: CellView, state: _ClassState):
        """Relaxed randomization (Borg §3.4): walk the class's machine order, a chunk at a time,
        until at least ``sample_feasible`` feasible machines are in the class's window; the
        best of the window is taken. The window is kept (and refreshed) for the next task of
        the class and topped up when fewer than ``sample_feasible`` still fit."""
        want, chunk = self.config.sample_feasible, self.config.scan_chunk
        window = state.window
        if len(window):
            self._refresh(view, state, window)
        at, scores = self._feasible_among(view, state, window)
        idx = window[at]
        while len(idx) < want and state.pos < len(state.order):
            more = state.order[state.pos : state.pos + chunk]
            state.pos += len(more)
            self._refresh(view, state, more)
            at, more_scores = self._feasible_among(view, state, more)
            idx, scores = np.concatenate((idx, more[at])), np.concatenate((scores, more_scores))
        state.window = idx
        return idx, scores

    def _allocate(self, view: CellView, state: _ClassState, idx: np.ndarray, scores: np.ndarray, wanted: int):
        """Where the next of ``wanted`` identical tasks go: ``[(machine, copies, score, after)]``.

        Sequential greedy placement puts each task on the best candidate (ties to the lowest
        rank), after which only that machine's score changes. For a machine-local, predictable
        policy those changes can be computed up front: one vectorised what-if evaluation of the
        top candidates after 1..wanted copies, then a k-way merge of their score sequences gives
        exactly the sequential choices. The merge stops where sequential placement could pick a
        machine outside the top candidates (``bound``), or where relaxed randomization would
        look for more machines (fewer than ``sample_feasible`` still fit). ``after`` is the
        machine's (feasible, score) once its copies are placed, for the cache; None if unknown.
        """
        ranks = view.rank[idx]
        req = state.req
        parts = self.policy.parts(req)
        batchable = (
            wanted > 1 and self.config.equivalence_classes and self.config.score_cache
            and parts.machine_local and parts.predictable and not req.gpu and not req.resources.needs_ports
            and not self._gangs.restricts(req)
        )
        if not batchable:
            # The best score, ties to the lowest rank: no sort needed for one task.
            tied = np.flatnonzero(scores == scores.max())
            best = int(tied[ranks[tied].argmin()]) if len(tied) > 1 else int(tied[0])
            return [(int(idx[best]), 1, float(scores[best]), None)]
        top_n = min(len(idx), wanted + 1)
        bound = None
        if top_n < len(idx):
            # The top_n best by (score, rank) exactly: sort only those scoring at least the
            # top_n-th best score (ties at the boundary included), then cut.
            kth = np.partition(scores, len(scores) - top_n)[len(scores) - top_n]
            near = np.flatnonzero(scores >= kth)
            ordered = near[np.lexsort((ranks[near], -scores[near]))]
            top = ordered[:top_n]
            if len(ordered) > top_n:
                bound = (-float(scores[ordered[top_n]]), int(ranks[ordered[top_n]]))
            else:
                rest = np.ones(len(idx), dtype=bool)
                rest[top] = False
                rest_idx = np.flatnonzero(rest)
                first = rest_idx[np.lexsort((ranks[rest_idx], -scores[rest_idx]))[0]]
                bound = (-float(scores[first]), int(ranks[first]))
        else:
            top = np.arange(len(idx))
        machines, top_scores, top_ranks = idx[top], scores[top], ranks[top]
        copies = np.arange(1, wanted + 1)
        free = view.free[machines][:, None, :] - copies[None, :, None] * req.vector
        feasible, after = self.policy.evaluate_local(
            EvalContext(view, req, np.repeat(machines, wanted), free=free.reshape(-1, free.shape[-1]))
        )
        self.stats["evaluations"] += len(feasible)
        # Plain lists from here: the merge is scalar work, where NumPy indexing is slow.
        feasible = feasible.reshape(len(machines), wanted).tolist()
        after = after.reshape(len(machines), wanted).tolist()
        heap = [(-score, rank, j) for j, (score, rank) in enumerate(zip(top_scores.tolist(), top_ranks.tolist()))]
        heapq.heapify(heap)
        counts = [0] * len(machines)
        groups: list[list] = []  # [j, copies, score] in the order sequential placement takes them
        still_fit = len(idx)
        refill = self.config.relaxed_randomization and state.pos < len(state.order)
        placed = 0
        while placed < wanted and heap:
            if bound is not None and heap[0][:2] > bound:
                break
            neg_score, rank, j = heapq.heappop(heap)
            groups.append([j, 0, -neg_score])
            # Machine j keeps taking copies while it stays the best (then it goes back in the heap).
            rival = heap[0][:2] if heap else None
            if bound is not None and (rival is None or bound < rival):
                rival = bound
            count = counts[j]
            while placed < wanted:
                count += 1
                placed += 1
                groups[-1][1] += 1
                if not feasible[j][count - 1]:
                    still_fit -= 1
                    break
                key = (-after[j][count - 1], rank)
                if rival is not None and key > rival:
                    heapq.heappush(heap, (key[0], rank, j))
                    break
            counts[j] = count
            if refill and still_fit < self.config.sample_feasible:
                break
        allocation, seen, machine_list = [], [0] * len(machines), machines.tolist()
        for j, n, score in groups:
            seen[j] += n
            allocation.append((machine_list[j], n, score, (feasible[j][seen[j] - 1], after[j][seen[j] - 1])))
        return allocation

    def _place(self, view, batch, machine, score, evaluated, plan, this_pass) -> None:
        name = view.names[machine]
        req = batch[0].request
        # Copies beyond what fits against limits go in reclaimed room (the checkers said they fit there).
        within = len(batch) if not view.reserving_below_limit or against_limits(req.priority) \
            else fits_against_limits(view.free[machine], req.vector)
        if req.gpu or req.resources.needs_ports or req.job is not None:
            for n, task in enumerate(batch):
                gpus = self.policy.select_gpus(view, machine, req)
                ports = pick_ports(view, machine, req)
                reclaimed = n >= within
                view.place(PlacedTask(task.id, task.job, task.user, req, gpus, this_pass, ports, reclaimed), machine)
                plan.placements.append(Placement(task.id, name, gpus, score, evaluated, ports, reclaimed))
        else:
            for part, reclaimed in ((batch[:within], False), (batch[within:], True)):
                if part:
                    view.place_copies([PlacedTask(t.id, t.job, t.user, req, (), this_pass, (), reclaimed)
                                       for t in part], machine)
                    plan.placements.extend([Placement(t.id, name, (), score, evaluated, (), reclaimed) for t in part])

    # ---- when nothing fits ---------------------------------------------------------------------

    def _try_preemption(self, view, state, task: PendingTask, plan: Plan, this_pass: object) -> bool:
        if not self.config.preemption or state.no_preemption:
            return False
        found = find_preemption(view, self.policy, task.request, this_pass, self.config.preemption_candidates)
        if found is None:
            state.no_preemption = True
            return False
        machine, victims, score = found
        if self._gangs.holds(task.request, machine):
            state.no_preemption = True  # not on a machine held for a waiting gang (gang.py)
            return False
        name = view.names[machine]
        for victim in victims:
            self._gangs.evicted(view.remove(victim.id), machine)
            plan.preemptions.append(Preemption(
                victim.id, name, task.id,
                f"preempted on {name} by {task.id} (" + ("an opportunistic task goes first"
                                                         if victim.request.opportunistic else
                                                         f"priority {task.request.priority} > {victim.priority}") + ")",
            ))
        self._place(view, [task], machine, score, len(view), plan, this_pass)
        return True

    def explain(self, view: CellView, request: TaskRequest) -> Explanation:
        """Why a task of ``request`` cannot be placed on ``view`` as it is (reads only)."""
        explanation = explain(self.policy, EvalContext(view, request, np.arange(len(view))))
        explanation.preemption = why_no_preemption(request, self.config.preemption)
        return explanation

    def _explain(self, view: CellView, state: _ClassState) -> Explanation:
        if state.explanation is None:
            state.explanation = explain(self.policy, EvalContext(view, state.req, np.arange(len(view))))
            state.explanation.preemption = why_no_preemption(state.req, self.config.preemption)
            state.explanation.held = self._gangs.note(view, state.req)  # machines held for a gang, if any
        return state.explanation
