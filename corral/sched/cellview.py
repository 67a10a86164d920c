"""The cell as NumPy arrays over machines.

Rows are machines (index ``0..M-1``), columns the resource dimensions of
:data:`corral.model.resources.DIMS`. Besides capacity and free resources the
view keeps what is used *per priority*, so "available at priority p" — free
plus what lower priorities could give up — is one vector operation, and the
idle milli-GPU of every GPU of every machine.

Reclamation (Borg §5.5): beside the limit-based ``free`` and ``used`` the view
keeps ``reserved``, per machine the sum of its tasks' reservations (a task's
limit until the master tells it less, :meth:`CellView.set_reservation`), so
the room non-production work may be placed in, ``capacity - reserved``, is
one vector operation too. A task placed in that room (``PlacedTask.reclaimed``)
may leave ``free`` below zero; whoever places it checked the room first
(reservations are soft state: a replayed log places it whatever they are now).

Every change to a machine bumps its ``version`` (from one counter that only
grows, also across :meth:`copy`), which is how score caches know what went
stale. The view does no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from corral.model.machine import Machine
from corral.model.priority import NUM_PRIORITIES
from corral.model.resources import DIMS, GPU, GPU_MILLI_WHOLE
from corral.sched.overlay import Overlay as _Overlay
from corral.sched.request import PlacedTask

MISSING = -1  # attribute code of a machine that lacks the attribute


class PlacementError(ValueError):
    """A placement that does not fit; the view is unchanged."""


@dataclass
class _Vocabulary:
    codes: dict[str, int]

    def code(self, value: str) -> int:
        return self.codes.get(value, -2)  # -2 never matches a machine


class CellView:
    def __init__(self, machines: Sequence[Machine]):
        count = len(machines)
        self.names: list[str] = [m.name for m in machines]
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        if len(self.index) != count:
            raise ValueError("machine names must be unique")
        self.capacity = np.array([m.capacity.vector() for m in machines], dtype=np.int64).reshape(count, len(DIMS))
        # A machine's GPUs are whole; its capacity vector counts them in milli-GPU.
        self.gpu_count = np.array([m.capacity.gpu for m in machines], dtype=np.int32)
        self.capacity[:, GPU] = self.gpu_count.astype(np.int64) * GPU_MILLI_WHOLE
        self.free = self.capacity.copy()
        # 1/capacity (0 where a machine has none of a resource): fractions without division.
        self.inverse_capacity = np.divide(1.0, self.capacity, out=np.zeros(self.capacity.shape), where=self.capacity > 0)
        self.used = np.zeros((NUM_PRIORITIES, count, len(DIMS)), dtype=np.int64)
        # Sum of the reservations of each machine's tasks (limits until told less): kept as tasks are
        # placed and removed and as the master hands in reservations (set_reservation).
        self.reserved = np.zeros((count, len(DIMS)), dtype=np.int64)
        self.reserving_below_limit = 0  # tasks whose reservation is below their limit (0: no room reclaimed)
        # What opportunistic tasks (beyond their users' quotas) hold, by limits: the only room best-effort
        # work may preempt for (corral.sched.preempt); they are in used[0] too.
        self.opportunistic = np.zeros((count, len(DIMS)), dtype=np.int64)
        max_gpus = int(self.gpu_count.max()) if count else 0
        self.gpu_idle = np.zeros((count, max_gpus), dtype=np.int32)
        for i, gpus in enumerate(self.gpu_count):
            self.gpu_idle[i, :gpus] = GPU_MILLI_WHOLE
        # Every GPU idle: what an empty machine offers (for "could it ever fit" and preemption).
        self.gpu_idle_when_empty = self.gpu_idle.copy()
        self.gpu_idle_when_empty.setflags(write=False)
        models = sorted({m.gpu_model for m in machines if m.gpu_model})
        self.gpu_models = _Vocabulary({name: i for i, name in enumerate(models)})
        self.gpu_model = np.array(
            [self.gpu_models.codes[m.gpu_model] if m.gpu_model else MISSING for m in machines], dtype=np.int32
        )
        self.attributes: dict[str, np.ndarray] = {}
        self.vocabularies: dict[str, _Vocabulary] = {}
        for key in sorted({k for m in machines for k in m.attributes}):
            values = sorted({m.attributes[key] for m in machines if key in m.attributes})
            vocab = _Vocabulary({v: i for i, v in enumerate(values)})
            self.vocabularies[key] = vocab
            self.attributes[key] = np.array(
                [vocab.codes[m.attributes[key]] if key in m.attributes else MISSING for m in machines],
                dtype=np.int32,
            )
        self.ports: list[set[int]] = [set() for _ in range(count)]
        self.tasks: list[dict[str, PlacedTask]] = [{} for _ in range(count)]
        # Copy on write: after copy() a machine's ports and tasks are shared with the other view
        # until one of them changes that machine; machines this view has its own copy of are here
        # (None: it shares nothing). A round's snapshot then costs O(machines), not O(tasks).
        self._owned: set[int] | None = None
        self.where: dict[str, int] | _Overlay = {}
        # Open snapshots whose map is this view's ``where``: [True] until released.
        self._lent: list[list[bool]] = []
        self._token: list[bool] | None = None  # this snapshot's own, when it is one
        # Tasks of a job per failure-domain value: {(job, domain): counts per domain code}.
        self.domain_counts: dict[tuple[str, str], np.ndarray] = {}
        # Tasks counted in each array (an array goes when its job has no task left here), and the
        # arrays this view may write in place: after copy() both views share them until written.
        self._domain_tasks: dict[tuple[str, str], int] = {}
        self._domains_owned: set[tuple[str, str]] | None = None
        # What each user's tasks on this view hold (rows of ``user_used``, by ``user_row``): kept
        # as tasks are placed and removed, so fair-share order never scans the running tasks.
        self.user_row: dict[str, int] = {}
        self.user_used = np.zeros((0, len(DIMS)), dtype=np.int64)
        # Counts removals: a user's usage only grows between two equal counts (fair share reads it).
        self.removals = 0
        # Ties between equal scores go to the lowest rank; the simulator may set it.
        self.rank = np.arange(count, dtype=np.int64)
        self.version = np.zeros(count, dtype=np.int64)
        # One counter shared by the view and all its copies (copy shares the object): a version
        # number is never reused, so a score cached against a snapshot's version never matches
        # a different state of the live view.
        self._clock = itertools.count(1)
        # Identifies this view and its copies: score caches built on one lineage are not reused on another.
        self.lineage = object()

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def attribute_codes(self, key: str) -> np.ndarray:
        codes = self.attributes.get(key)
        if codes is None:
            return np.full(len(self), MISSING, dtype=np.int32)
        return codes

    def value_code(self, key: str, value: str) -> int:
        vocab = self.vocabularies.get(key)
        return vocab.code(value) if vocab else -2

    def available_at(self, preemptible_below: int, idx: np.ndarray | None = None) -> np.ndarray:
        """Free resources plus those held by tasks with priority < ``preemptible_below``."""
        rows = slice(None) if idx is None else idx
        if preemptible_below <= 0:
            return self.free[rows].copy()
        return self.free[rows] + self.used[:preemptible_below, rows].sum(axis=0)

    def available_to(self, req, idx: np.ndarray | None = None) -> np.ndarray:
        """What a task of ``req`` could have by preempting (corral.sched.preempt): free plus the lower
        priorities', or for best-effort work free plus opportunistic tasks'; an opportunistic task: free."""
        from corral.model.priority import preemptible_below

        below = preemptible_below(req.priority)
        if below > 0 or req.opportunistic:
            return self.available_at(below, idx)
        rows = slice(None) if idx is None else idx
        return self.free[rows] + self.opportunistic[rows]

    def job_domain_counts(self, job: str, domain: str) -> np.ndarray:
        key = (job, domain)
        counts = self.domain_counts.get(key)
        if counts is None:
            size = len(self.vocabularies[domain].codes) if domain in self.vocabularies else 0
            counts = self.domain_counts[key] = np.zeros(size + 1, dtype=np.int64)  # last slot: MISSING
        return counts

    def reclaim_room(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Capacity less the reservations of the machines' tasks: where non-production work may go."""
        rows = slice(None) if idx is None else idx
        return self.capacity[rows] - self.reserved[rows]

    def task_count(self) -> int:
        return len(self.where)

    def usage_of(self, user: str) -> np.ndarray:
        """What ``user``'s tasks on this view hold, per resource (zeros for a user with none)."""
        row = self.user_row.get(user)
        return self.user_used[row].copy() if row is not None else np.zeros(len(DIMS), dtype=np.int64)

    @property
    def total_capacity(self) -> np.ndarray:
        """The cell's capacity per resource (the denominator of dominant shares)."""
        total = self.__dict__.get("_total_capacity")
        if total is None:
            total = self._total_capacity = self.capacity.sum(axis=0)
        return total

    # ---- changing ------------------------------------------------------------------------

    def _touch(self, machine: int) -> None:
        self.version[machine] = next(self._clock)

    def _charge(self, user: str, vec: np.ndarray) -> None:
        row = self.user_row.get(user)
        if row is None:
            row = self.user_row[user] = len(self.user_row)
            if row >= len(self.user_used):
                grown = np.zeros((max(8, 2 * len(self.user_used)), len(DIMS)), dtype=np.int64)
                grown[: len(self.user_used)] = self.user_used
                self.user_used = grown
        self.user_used[row] += vec

    def _writable_where(self) -> None:
        """Before changing ``where``: an open snapshot still reads it as it was, so copy it first."""
        if self._lent:
            if any(token[0] for token in self._lent):
                self.where = dict(self.where)
            self._lent = []

    def _own(self, machine: int) -> None:
        owned = self._owned
        if owned is not None and machine not in owned:
            self.tasks[machine] = dict(self.tasks[machine])
            self.ports[machine] = set(self.ports[machine])
            owned.add(machine)

    def place(self, task: PlacedTask, machine: int) -> None:
        """Put ``task`` on ``machine`` with its GPUs ``task.gpus``; raises if it does not fit."""
        if task.id in self.where:
            raise PlacementError(f"task {task.id} is already on {self.names[self.where[task.id]]}")
        req = task.request
        vec = req.vector
        free = self.free[machine]
        if not task.reclaimed and (free < vec).any():
            raise PlacementError(f"task {task.id} does not fit on {self.names[machine]}")
        ports = task.held_ports
        if len(task.ports) != req.resources.dynamic_ports or len(set(ports)) != len(ports):
            raise PlacementError(f"task {task.id} needs {req.resources.dynamic_ports} dynamic ports, was given {task.ports}")
        if len(task.gpus) != req.gpu:
            raise PlacementError(f"task {task.id} needs {req.gpu} GPUs, was given {task.gpus}")
        if task.gpus and (self.gpu_idle[machine, list(task.gpus)] < req.gpu_milli).any():
            raise PlacementError(f"task {task.id}: GPUs {task.gpus} cannot hold it on {self.names[machine]}")
        if ports and self.ports[machine].intersection(ports):
            raise PlacementError(f"task {task.id}: a port it needs is taken on {self.names[machine]}")
        self._own(machine)
        self._writable_where()
        free -= vec
        self.used[req.priority, machine] += vec
        if req.opportunistic:
            self.opportunistic[machine] += vec
        self.reserved[machine] += task.reservation
        if task.reserved is not None:
            self.reserving_below_limit += 1
        for gpu in task.gpus:
            self.gpu_idle[machine, gpu] -= req.gpu_milli
        if ports:
            self.ports[machine].update(ports)
        self.tasks[machine][task.id] = task
        self.where[task.id] = machine
        self._charge(task.user, vec)
        if req.job is not None:
            self._count_domains(req, machine, +1)
        self._touch(machine)

    def place_copies(self, tasks: Sequence[PlacedTask], machine: int) -> None:
        """Put several tasks of one request (no GPUs, ports or domain rules) on ``machine`` in one update."""
        req = tasks[0].request
        if req.job is not None or req.gpu or req.resources.needs_ports or any(t.request is not req and t.request != req for t in tasks):
            raise PlacementError("place_copies takes tasks of one request without GPUs or ports")
        reclaimed = tasks[0].reclaimed
        if any(t.reclaimed is not reclaimed or t.reserved is not None for t in tasks):
            raise PlacementError("place_copies takes new tasks (at their limits), all reclaimed or none")
        where = self.where
        total = req.vector * len(tasks)
        free = self.free[machine]
        if not reclaimed and (free < total).any():
            raise PlacementError(f"{len(tasks)} copies of {req.describe()} do not fit on {self.names[machine]}")
        self._own(machine)
        self._writable_where()
        on_machine = self.tasks[machine]
        for n, task in enumerate(tasks):
            if task.id in where:  # the same id twice in ``tasks``: undo and refuse
                for placed in tasks[:n]:
                    del on_machine[placed.id], where[placed.id]
                raise PlacementError(f"task {task.id} given twice")
            on_machine[task.id] = task
            where[task.id] = machine
        free -= total
        self.used[req.priority, machine] += total
        if req.opportunistic:
            self.opportunistic[machine] += total
        self.reserved[machine] += total
        user = tasks[0].user
        if all(task.user == user for task in tasks):
            self._charge(user, total)
        else:
            for task in tasks:
                self._charge(task.user, req.vector)
        self.version[machine] = next(self._clock)

    def remove(self, task_id: str) -> PlacedTask:
        """Take a task off its machine, giving its resources back."""
        self._writable_where()
        machine = self.where.pop(task_id)
        self._own(machine)
        task = self.tasks[machine].pop(task_id)
        req = task.request
        self.free[machine] += req.vector
        self.used[req.priority, machine] -= req.vector
        if req.opportunistic:
            self.opportunistic[machine] -= req.vector
        self.reserved[machine] -= task.reservation
        if task.reserved is not None:
            self.reserving_below_limit -= 1
        for gpu in task.gpus:
            self.gpu_idle[machine, gpu] += req.gpu_milli
        self.ports[machine].difference_update(task.held_ports)
        self._charge(task.user, -req.vector)
        self.removals += 1
        self._count_domains(req, machine, -1)
        self._touch(machine)
        return task

    def set_reservation(self, task_id: str, reservation: np.ndarray | None) -> bool:
        """The master's reservation of a placed task over DIMS (None: its limit), capped at its limit.
        Bumps the machine's version when it changes the machine's ``reserved``; False if unchanged
        or the task is not on this view."""
        machine = self.where.get(task_id)
        if machine is None:
            return False
        task = self.tasks[machine][task_id]
        limit = task.request.vector
        new = None if reservation is None else np.minimum(np.asarray(reservation, dtype=np.int64), limit)
        if new is not None and (new == limit).all():
            new = None
        if new is None and task.reserved is None:
            return False
        if new is not None and task.reserved is not None and np.array_equal(new, task.reserved):
            return False
        self._own(machine)
        self.reserved[machine] += (limit if new is None else new) - task.reservation
        self.reserving_below_limit += (new is not None) - (task.reserved is not None)
        self.tasks[machine][task_id] = replace(task, reserved=new)
        self._touch(machine)
        return True

    def _count_domains(self, req, machine: int, delta: int) -> None:
        if req.job is None:
            return
        domains = {d for d, _ in req.max_per_domain} | ({req.spread} if req.spread else set())
        owned = self._domains_owned
        for domain in domains:
            key = (req.job, domain)
            left = self._domain_tasks.get(key, 0) + delta
            if left <= 0:  # the job has no task left here: forget its counts (copies stay small)
                self.domain_counts.pop(key, None)
                self._domain_tasks.pop(key, None)
                continue
            counts = self.domain_counts.get(key)
            if counts is not None and owned is not None and key not in owned:
                counts = self.domain_counts[key] = counts.copy()
            elif counts is None:
                counts = self.job_domain_counts(req.job, domain)
            if owned is not None:
                owned.add(key)
            counts[self.attribute_codes(domain)[machine]] += delta
            self._domain_tasks[key] = left

    def copy(self) -> "CellView":
        """An independent snapshot; versions continue from the same counter. Call ``release()`` on
        the snapshot once it is not read any more: until then the view it came from copies its task
        map before changing it."""
        other = object.__new__(CellView)
        other.__dict__.update(self.__dict__)
        for name in ("free", "used", "reserved", "opportunistic", "gpu_idle", "version", "user_used"):
            setattr(other, name, getattr(self, name).copy())
        other.ports = list(self.ports)
        other.tasks = list(self.tasks)
        self._owned, other._owned = set(), set()  # from now on both share every machine's sets
        # The copy reads this view's map through an overlay instead of copying it (O(tasks) per
        # scheduling round otherwise); this view copies it only if it changes before release().
        if isinstance(self.where, _Overlay):  # a copy of a snapshot gets a base of its own
            other.where, other._token = _Overlay(self.where.flatten()), None
        else:
            token = [True]
            self._lent = [t for t in self._lent if t[0]] + [token]
            other.where, other._token = _Overlay(self.where), token
        other._lent = []
        other.user_row = dict(self.user_row)
        other.domain_counts = dict(self.domain_counts)
        other._domain_tasks = dict(self._domain_tasks)
        self._domains_owned, other._domains_owned = set(), set()
        return other

    def release(self) -> None:
        """This snapshot is done with: the view it was copied from may change its map in place again."""
        if self._token is not None:
            self._token[0] = False
            self._token = None

    @classmethod
    def build(cls, machines: Sequence[Machine], placed: Iterable[tuple[PlacedTask, str]] = ()) -> "CellView":
        """A view of ``machines`` with the given tasks already running on them."""
        view = cls(machines)
        for task, machine in placed:
            view.place(task, view.index[machine])
        return view
