"""Link shards (Borg §3.3): the master's side of the master ↔ agent protocol.

The master sets the pace. Each machine belongs to one of a few shard threads
(by a hash of its name); every ``poll_interval_s`` a shard asks each of its
agents (``concurrency`` at a time) for its state (``GET /v1/state``: every
``full_every`` polls the full state, in between only what changed since the
last answer applied, ``?since=SEQ&incarnation=INC``, docs/agent-protocol.md)
and turns the answer into a command for the core:

* only the task statuses that changed since the last poll go in an
  :class:`AgentReport` (every ``full_report_every`` polls, after an agent
  restart and after an outage, all of them);
* a machine that misses ``misses_to_down`` polls in a row is declared down
  (:class:`MachineDown`: its tasks are lost and rescheduled, rate-limited by
  the core); a down machine that answers again comes back up
  (:class:`MachineUp`, which takes back the tasks it still runs that were
  not moved yet);
* after an agent restarts or comes back, and whenever the set of tasks the
  master wants on it changed, the shard sends ``PUT /v1/assignments`` so the
  agent kills any copy that was placed elsewhere meanwhile and forgets ended
  tasks (ended tasks are kept there for ``keep_ended_s`` so their logs can
  still be read);
* a task the master placed on a machine whose agent does not report it for
  two polls in a row is sent again (``PUT`` is idempotent per generation).

Agents also push their task changes as they happen (``POST
/api/v1/agents/{machine}/notify``, notify.py), so the core may learn of a
task between a poll's request and its answer being applied. The poll stays
the authority: its change detection compares poll with poll (a notification
the core took, or lost, makes at most one repeated status), and a task the
core learned about after the poll was sent is judged by the next poll, not
by this answer (see ``_reconcile``). Liveness counts poll answers only.

It is also the master's :class:`AgentTransport`: start effects become
``PUT /v1/tasks/{id}`` with the TaskLaunch body, kill effects ``DELETE``,
carried by the machine's shard in order, between polls. Nothing here
changes the cell's state except through commands to the master.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from urllib.parse import quote
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from corral.master.agent_http import AgentHttp
from corral.master.assignments import AgentMemory, news_key as _key, plan_assignments, settled_mark
from corral.master.auth import Tokens
from corral.master.delivery import STOP as _STOP, deliver_batch, drain
from corral.master.errors import AdmissionError, MasterUnavailable
from corral.master.commands import (AgentReport, Effect, KillTask, MachineDown, MachineUp, ReclaimedCpu, StartTask,
                                    UpgradeTask, UsageReport)
from corral.master.liveness import Liveness
from corral.master.reservation_book import usage_of_statuses
from corral.master.usage import recorder
from corral.tls import check_peer

log = logging.getLogger(__name__)

AgentClient = AgentHttp | httpx.Client  # what the link calls agents with (tests hand it a mock httpx.Client)


class LinkShards:
    """Polls the cell's agents and carries effects to them; see the module docstring."""

    def __init__(self, master: Any, tokens: Tokens | Iterable[str] = (), shards: int = 4,
                 poll_interval_s: float = 2.0, misses_to_down: int = 3, timeout_s: float = 2.0,
                 full_report_every: int = 15, keep_ended_s: float = 600.0, concurrency: int = 8,
                 full_every: int = 5):
        self.master = master
        self.shards = max(1, int(shards))
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.full_report_every = max(1, full_report_every)
        self.full_every = max(1, full_every)  # polls that ask for the whole state, not only what changed
        self.keep_ended_s = keep_ended_s
        self.concurrency = max(1, int(concurrency))  # polls in flight at once per shard
        self.liveness = Liveness(misses_to_down)
        # token -> the machine it is bound to ("*": any); a machine's agent is only ever sent a token
        # bound to it, so a token never reaches an address registered for another machine
        if isinstance(tokens, Tokens):
            self._bound = {t: who.machine or "*" for t, who in tokens.table.items() if who.role == "agent"}
        else:
            self._bound = {t: "*" for t in tokens}
        self.agent_tokens = list(self._bound)
        self._token_of: dict[str, str] = {}  # machine -> the token its agent accepts
        self._agents: dict[str, AgentMemory] = {}
        self._queues = [queue.Queue() for _ in range(self.shards)]
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _agents and _token_of between shards and the API
        self.rounds = 0
        self._record_usage = recorder(master)  # every poll answer feeds the usage history
        self.verify: Any = True  # TLS: the cell's client context; agents' certificates must name their machine

    # ---- wiring --------------------------------------------------------------------------------

    def shard_of(self, machine: str) -> int:
        return zlib.crc32(machine.encode()) % self.shards

    def incarnation_of(self, machine: str) -> str | None:
        """The incarnation of ``machine``'s agent in its last poll answer (None before the first)."""
        with self._lock:
            agent = self._agents.get(machine)
            return agent.incarnation if agent is not None and agent.polls else None

    def remember_token(self, machine: str, token: str) -> None:
        """The token ``machine``'s agent registered with (it accepts the same one on its API)."""
        with self._lock:
            self._token_of[machine] = token

    def start(self) -> "LinkShards":
        for i in range(self.shards):
            thread = threading.Thread(target=self._run, args=(i,), name=f"corral-link-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join(timeout_s)

    # ---- AgentTransport ------------------------------------------------------------------------

    def send(self, effects: list[Effect]) -> None:
        for effect in effects:
            self._queues[self.shard_of(effect.machine)].put(effect)

    # ---- a shard -------------------------------------------------------------------------------

    def _run(self, shard: int) -> None:
        q = self._queues[shard]
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"corral-link-{shard}") \
            if self.concurrency > 1 else None
        try:
            self._shard_loop(shard, q, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _shard_loop(self, shard: int, q: queue.Queue, pool: ThreadPoolExecutor | None) -> None:
        # One kept connection per agent (agent_http.py): a poll costs the master a third of httpx's.
        with AgentHttp(timeout_s=self.timeout_s, ssl_context=None if self.verify is True else self.verify) as client:
            next_poll = time.monotonic()
            while not self._stop.is_set():
                if not drain(q, next_poll, lambda batch: deliver_batch(
                        batch, lambda effect: self._deliver(client, effect), pool)):
                    return
                next_poll = time.monotonic() + self.poll_interval_s
                machines = self._machines(shard)
                if len(machines) > 1 and pool is not None:
                    # Up to ``concurrency`` agents at once: unreachable agents cost a round one
                    # timeout, not one each.
                    list(pool.map(lambda m: self._poll_logged(client, *m), machines))
                else:
                    for machine in machines:
                        self._poll_logged(client, *machine)
                if shard == 0:
                    self.rounds += 1

    def _poll_logged(self, client: AgentClient, name: str, address: str, state: str) -> None:
        if self._stop.is_set():
            return
        started = time.monotonic()
        try:
            self.poll(client, name, address, state)
        except MasterUnavailable:  # writes refused (a failing store): said once; the next poll tries again
            pass
        except Exception:
            log.exception("polling %s failed", name, extra={"machine": name})
        self.master.metrics.poll_seconds.labels(name).observe(time.monotonic() - started)

    def _machines(self, shard: int) -> list[tuple[str, str, str]]:
        with self.master.lock:
            machines = [(m.name, m.address, m.state) for m in self.master.core.state.machines.values() if m.address]
        return [m for m in machines if self.shard_of(m[0]) == shard]

    def tokens_for(self, machine: str) -> list[str]:
        """The agent tokens that may be sent to ``machine``'s agent: those bound to it, then ``*``."""
        return sorted((t for t, m in self._bound.items() if m in (machine, "*")), key=lambda t: self._bound[t] == "*")

    def _headers(self, machine: str, token: str | None = None) -> dict[str, str]:
        if token is None:
            token = self._token_of.get(machine) or next(iter(self.tokens_for(machine)), "")
        return {"Authorization": f"Bearer {token}"}

    def _request(self, client: AgentClient, machine: str, method: str, url: str, **kw: Any) -> httpx.Response:
        """One call to ``machine``'s agent; on 401 try the other agent tokens and keep the one that works."""
        response = client.request(method, url, headers=self._headers(machine), **kw)
        if self.verify is not True:
            check_peer(response, machine)
        if response.status_code != 401:
            return response
        for token in self.tokens_for(machine):
            if token == self._token_of.get(machine):
                continue
            retry = client.request(method, url, headers=self._headers(machine, token), **kw)
            if retry.status_code != 401:
                with self._lock:
                    self._token_of[machine] = token
                return retry
        return response

    def _deliver(self, client: AgentClient, effect: Effect) -> None:
        if not effect.address:
            return
        try:
            if isinstance(effect, (StartTask, UpgradeTask)):  # an upgrade is the same launch again
                r = self._request(client, effect.machine, "PUT", f"{effect.address}/v1/tasks/{effect.task}",
                                  json=effect.launch)
            elif isinstance(effect, KillTask):
                r = self._request(client, effect.machine, "DELETE", f"{effect.address}/v1/tasks/{effect.task}")
            elif isinstance(effect, ReclaimedCpu):  # reclamation.py: the CPU of tasks in reclaimed room
                r = self._request(client, effect.machine, "PUT", f"{effect.address}/v1/reclaimed",
                                  json={"cpu_milli": effect.cpu})
            else:
                raise TypeError(f"unknown effect {effect!r}")
        except httpx.HTTPError as e:
            # Not fatal: the next polls send it again (a start) or kill the stray copy (assignments).
            log.warning("%s %s on %s: %s", type(effect).__name__, effect.task, effect.machine, e)
            return
        if r.status_code // 100 != 2:
            log.warning("%s %s on %s: HTTP %d %s", type(effect).__name__, effect.task, effect.machine,
                        r.status_code, r.text[:300])
        if isinstance(effect, StartTask) and r.status_code in (400, 422):
            self._refused(effect, r)

    def _refused(self, effect: StartTask, r: httpx.Response) -> None:
        """The agent will never run this launch: report it failed there, so the master tries another
        machine or fails the task with the agent's words (instead of sending it again forever)."""
        try:
            body = r.json()
            message = body.get("message") or body.get("error") or r.text  # agents before the shared body: "error"
        except (ValueError, AttributeError):
            message = r.text
        status = {"task_id": effect.task, "generation": effect.launch.get("generation"), "state": "failed",
                  "last_error": f"the agent of {effect.machine} refused the task: {str(message)[:300]}"}
        try:
            self.master.execute(AgentReport(effect.machine, [status], full=False))
        except AdmissionError as e:
            log.warning("report of the refused %s: %s", effect.task, e)

    def poll(self, client: AgentClient, name: str, address: str, state: str) -> None:
        """Poll one agent and tell the core what changed (public for tests)."""
        # What the master knew before the agent answered: anything it learned later (a notification,
        # a kill) is newer than this answer. A plain read: the seq only grows.
        asked_at = self.master.core.state.seq
        with self._lock:
            agent = self._agents.setdefault(name, AgentMemory())
        # Every ``full_every`` polls (and after anything unusual) the whole state: usage, and the
        # safety net. In between only what changed since the last answer applied: the agent numbers
        # its task changes (corral/agent/changes.py) and answers everything when it cannot tell.
        ask_full = (agent.seq is None or state != "up" or agent.polls % self.full_every == 0
                    or agent.polls % self.full_report_every == 0)
        params = None if ask_full else {"since": str(agent.seq), "incarnation": agent.incarnation}
        url = f"{address}/v1/state"
        if params is not None:  # written out: urlencode costs more than the rest of a quiet poll
            incarnation = agent.incarnation if agent.incarnation.isalnum() else quote(agent.incarnation, safe="")
            url += f"?since={agent.seq}&incarnation={incarnation}"
        try:
            r = self._request(client, name, "GET", url)
            data = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
            agent.seq = None
            self.master.metrics.poll_failures.labels(name).inc()
            self._missed(name, state)
            return
        # Only a poll answer proves the master can reach the agent (the way its starts, kills and
        # assignments travel); a notification proves only the opposite direction and comes only when
        # something changed, so a partitioned agent is still found by its missed polls.
        came_back = self.liveness.answered(name)
        tasks = [t for t in data["tasks"] if isinstance(t, dict) and isinstance(t.get("task_id"), str)]
        incarnation = str(data.get("incarnation", ""))
        delta = "since" in data
        removed = data.get("removed")
        if delta and (params is None or data.get("since") != agent.seq or incarnation != agent.incarnation
                      or not isinstance(removed, list)):
            agent.seq = None  # not the delta asked for: take nothing from it, ask for everything next
            return
        if delta:
            known = dict(agent.known)
            known.update((t["task_id"], t) for t in tasks)
            for task in removed:
                known.pop(task, None)
        else:
            known = {t["task_id"]: t for t in tasks}
            if self._record_usage is not None:
                self._record_usage(name, tasks)
        everything = list(known.values())
        restarted = bool(agent.incarnation) and incarnation != agent.incarnation
        full = came_back or restarted or state != "up" or agent.polls % self.full_report_every == 0
        agent.polls += 1
        agent.incarnation = incarnation
        if restarted:
            agent.reported.clear()
        # A delta holds every task whose news changed; the others cannot have changed.
        changed = [t for t in tasks if agent.reported.get(t["task_id"]) != _key(t)]
        quiet = False
        try:
            if state != "up":
                self.master.execute(MachineUp(name, everything, incarnation))
                log.info("machine %s answers again", name)
            elif full or changed:
                self.master.execute(AgentReport(name, everything if full else changed, incarnation))
            else:
                quiet = delta and not removed
                with self.master.lock:
                    core = self.master.core
                    machine = core.state.machines.get(name)
                    if machine is not None:
                        machine.last_seen = core.clock.now()
                    settled = settled_mark(core.state.view, name)
        except AdmissionError as e:
            log.warning("report of %s refused: %s", name, e)
            return
        agent.known = known
        seq = data.get("seq")
        agent.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None
        if delta:
            for t in tasks:
                agent.reported[t["task_id"]] = _key(t)
            for task in removed:
                agent.reported.pop(task, None)
        else:
            agent.reported = {t["task_id"]: _key(t) for t in tasks}
        if not delta:  # the full answers carry every task's usage: the reservations decay towards it
            usage = usage_of_statuses(tasks)  # (reservation_book.py)
            if usage:
                self.master.execute(UsageReport(name, usage))
        resync = came_back or restarted or state != "up"
        if (quiet and not resync and not agent.absent and settled is not None and settled == agent.settled
                and time.monotonic() < agent.next_expiry):
            return  # nothing changed on either side since the assignments were last checked
        self._reconcile(client, name, address, agent, everything, resync=resync, asked_at=asked_at)

    def _missed(self, name: str, state: str) -> None:
        down_now = self.liveness.missed(name)
        if state == "up" and (down_now or self.liveness.is_down(name)):
            misses = self.liveness.misses(name)
            log.warning("machine %s missed %d polls in a row; declaring it down", name, misses)
            try:
                self.master.execute(MachineDown(name, note=f"its machine {name} missed {misses} polls in a row"))
            except AdmissionError as e:
                log.warning("declaring %s down refused: %s", name, e)

    def _reconcile(self, client: AgentClient, name: str, address: str, agent: AgentMemory,
                   tasks: list[dict[str, Any]], resync: bool, asked_at: int | None = None) -> None:
        """Send the assignments if they changed (or after an outage); send again tasks the agent
        lost (assignments.plan_assignments says which)."""
        wanted, relaunch = plan_assignments(self.master, agent, name, address, tasks, asked_at, self.keep_ended_s)
        if resync or wanted != agent.assigned:
            try:
                r = self._request(client, name, "PUT", f"{address}/v1/assignments", json={"task_ids": sorted(wanted)})
                if r.status_code // 100 == 2:
                    agent.assigned = wanted
                    killing = r.json().get("killing") or []
                    if killing:
                        log.info("agent %s kills tasks placed elsewhere: %s", name, ", ".join(killing))
            except (httpx.HTTPError, ValueError) as e:
                log.warning("assignments for %s: %s", name, e)
        for effect in relaunch:
            log.info("agent %s does not report %s; sending it again", name, effect.task)
            self._deliver(client, effect)

    # ---- logs ------------------------------------------------------------------------------------

    def logs(self, machine: str, task: str, stream: str = "stdout", tail: int = 100,
             client: httpx.Client | None = None) -> tuple[int, str]:
        """``(status, text)`` of the agent's ``GET /v1/tasks/{task}/logs`` on ``machine``."""
        with self.master.lock:
            record = self.master.core.state.machines.get(machine)
            address = record.address if record else ""
        if not address:
            return 404, f"machine {machine} has no agent address"
        own = client is None
        client = client or httpx.Client(timeout=self.timeout_s + 3.0, verify=self.verify)
        try:
            r = self._request(client, machine, "GET", f"{address}/v1/tasks/{task}/logs",
                              params={"stream": stream, "tail": str(tail)})
        except httpx.HTTPError as e:
            return 502, f"cannot reach the agent of {machine}: {e}"
        finally:
            if own:
                client.close()
        return r.status_code, r.text


def attach_link(master: Any, tokens: Tokens | Iterable[str] = (), **args: Any) -> LinkShards:
    """Make link shards the transport of ``master`` (and ``master.link``, for the API); not started."""
    link = LinkShards(master, tokens, **args)
    master.core.transport = link
    master.link = link
    master.core.poll_interval_s = link.poll_interval_s
    return link
