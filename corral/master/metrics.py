"""The master's Prometheus metrics (prometheus-client), served at ``/metrics``.

Each master has its own registry (several masters may share a process in
tests). Counters and histograms are fed by the service (corral.master.service:
rounds, appends, commands, logged events) and the link (polls); the pending
tasks by band and reason, the cell's sizes and the leader status are read
from the state when scraped.

=============================================  =========  ================================================
name                                           type       what
=============================================  =========  ================================================
corral_scheduling_round_duration_seconds       histogram  one round: snapshot, plan, commit (retries included)
corral_tasks_placed_total                      counter    placements committed
corral_tasks_preempted_total                   counter    tasks a commit evicted to make room
corral_tasks_evicted_total                     counter    tasks their agents evicted (memory pressure, kills)
corral_commit_conflicts_total                  counter    planned placements stale at commit
corral_commit_retries_total                    counter    plans made again for stale placements
corral_store_append_duration_seconds           histogram  an append, until durable
corral_commands_total{command}                 counter    commands applied, by type
corral_agent_poll_duration_seconds{machine}    histogram  one poll of an agent
corral_agent_poll_failures_total{machine}      counter    polls that got no usable answer
corral_tasks_pending{band,reason}              gauge      pending tasks; reason: the scheduler's first cause
corral_tasks{state}                            gauge      tasks by state (pending, running, dead)
corral_machines{state}                         gauge      machines up and lost
corral_master_leader                           gauge      1 while this master leads the cell
corral_master_broken                           gauge      1 once its store failed (it takes no writes)
corral_scheduler_rounds_total{scheduler}       counter    rounds (or external commits) of each scheduler profile
corral_scheduler_placements_total{scheduler}   counter    placements each profile committed
corral_scheduler_conflicts_total{scheduler}    counter    each profile's placements stale at commit
corral_scheduler_retries_total{scheduler}      counter    each profile's passes planned again for stale ones
corral_scheduler_backoff_seconds{scheduler}    gauge      how long each profile still waits before its next round
corral_scheduler_jobs{scheduler}               gauge      live jobs each profile owns
=============================================  =========  ================================================
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MasterMetrics:
    def __init__(self, master: Any):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.round_seconds = Histogram("corral_scheduling_round_duration_seconds",
                                       "Duration of one scheduling round (snapshot, plan, commit)", buckets=_FAST,
                                       registry=r)
        self.placed = Counter("corral_tasks_placed", "Placements committed", registry=r)
        self.preempted = Counter("corral_tasks_preempted", "Tasks evicted by a commit to make room", registry=r)
        self.evicted = Counter("corral_tasks_evicted", "Tasks evicted by their agents", registry=r)
        self.conflicts = Counter("corral_commit_conflicts", "Planned placements stale at commit time", registry=r)
        self.retries = Counter("corral_commit_retries", "Plans made again for stale placements", registry=r)
        self.append_seconds = Histogram("corral_store_append_duration_seconds",
                                        "Time from an append to the store until it is durable", buckets=_FAST,
                                        registry=r)
        self.commands = Counter("corral_commands", "Commands applied, by type", ["command"], registry=r)
        self.poll_seconds = Histogram("corral_agent_poll_duration_seconds", "Duration of one poll of an agent",
                                      ["machine"], buckets=_FAST, registry=r)
        self.poll_failures = Counter("corral_agent_poll_failures", "Polls of an agent without a usable answer",
                                     ["machine"], registry=r)
        r.register(_CellCollector(master))

    def rendered(self) -> bytes:
        return generate_latest(self.registry)

    def round(self, seconds: float, result: Any) -> None:
        self.round_seconds.observe(seconds)
        self.placed.inc(result.placed)
        self.preempted.inc(result.preempted)
        self.conflicts.inc(result.conflicts)
        self.retries.inc(max(0, result.rounds - 1))

    def logged(self, events: list[dict[str, Any]], from_round: bool) -> None:
        if not from_round:  # a round's evictions are its preemptions, counted by round()
            n = sum(1 for e in events if e.get("via") == "evict")
            if n:
                self.evicted.inc(n)


def pending_reason_key(task: Any) -> str:
    """A pending task's reason as a label: the scheduler's cause that held back the most machines
    (its checker's words, e.g. ``insufficient memory``), else what the task waits for."""
    explanation = task.explanation or {}
    counts = {**(explanation.get("filtered") or {}), **(explanation.get("exhausted") or {})}
    if counts:
        return max(sorted(counts), key=lambda k: counts[k])
    reason = task.reason or ""
    if not reason:
        return "not yet scheduled"
    if reason.startswith("waiting for job"):
        return "waiting for a job"
    for word in ("stale", "preempted", "lost", "evicted", "restart"):
        if word in reason:
            return word
    return "other"


class _CellCollector:
    """What the state says at scrape time (read under the master's lock)."""

    def __init__(self, master: Any):
        self.master = master

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from corral.model.priority import band_of

        master = self.master
        state = master.core.state
        pending: Tally = Tally()
        tasks: Tally = Tally()
        machines: Tally = Tally()
        with master.lock:
            for task in state.tasks.values():
                tasks[task.state.value] += 1
                if task.state.value == "pending":
                    job = state.jobs.get(task.job)
                    band = band_of(job.spec.priority).value if job is not None else "unknown"
                    pending[(band, pending_reason_key(task))] += 1
            for m in state.machines.values():
                machines[m.state] += 1
            profiles = master.core.profiles.describe()
        g = GaugeMetricFamily("corral_tasks_pending", "Pending tasks by priority band and reason",
                              labels=["band", "reason"])
        for (band, reason), n in sorted(pending.items()):
            g.add_metric([band, reason], n)
        yield g
        g = GaugeMetricFamily("corral_tasks", "Tasks by state", labels=["state"])
        for word in ("pending", "running", "dead"):
            g.add_metric([word], tasks.get(word, 0))
        yield g
        g = GaugeMetricFamily("corral_machines", "Machines by state", labels=["state"])
        for word in ("up", "lost"):
            g.add_metric([word], machines.get(word, 0))
        yield g
        yield from _profile_metrics(profiles)
        yield GaugeMetricFamily("corral_master_leader", "1 while this master leads the cell",
                                value=1.0 if master.leading else 0.0)
        yield GaugeMetricFamily("corral_master_broken", "1 while no writes are taken (the store fails, or the "
                                "master is broken until restarted)",
                                value=1.0 if master.unavailable() is not None else 0.0)


def _profile_metrics(profiles: list[dict[str, Any]]) -> Iterator[Any]:
    """Each scheduler profile's counts (corral.master.profiles), read from its stats when scraped."""
    for key, what in (("rounds", "Rounds (or external commits) of each scheduler profile"),
                      ("placements", "Placements each scheduler profile committed"),
                      ("conflicts", "Placements of each scheduler profile stale at commit"),
                      ("retries", "Passes each scheduler profile planned again for stale placements")):
        c = CounterMetricFamily(f"corral_scheduler_{key}", what, labels=["scheduler"])
        for p in profiles:
            c.add_metric([p["name"]], p[key])
        yield c
    g = GaugeMetricFamily("corral_scheduler_backoff_seconds", "Seconds each scheduler profile still waits "
                          "before its next round (its plans kept conflicting)", labels=["scheduler"])
    for p in profiles:
        g.add_metric([p["name"]], p["backoff"]["remaining_s"])
    yield g
    g = GaugeMetricFamily("corral_scheduler_jobs", "Live jobs each scheduler profile owns", labels=["scheduler"])
    for p in profiles:
        g.add_metric([p["name"]], p["jobs"])
    yield g
