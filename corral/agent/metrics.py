"""The agent's Prometheus metrics (prometheus-client), served at ``/metrics`` on its API.

=========================================  =======  ==============================================
name                                       type     what
=========================================  =======  ==============================================
corral_agent_task_starts_total             counter  processes started (first starts and restarts)
corral_agent_task_start_failures_total     counter  processes that could not be started
corral_agent_task_restarts_total{task}     counter  restarts of a task in its current placement
corral_agent_task_cpu_usage_cores{task}    gauge    a running task's CPU use, in cores
corral_agent_task_memory_usage_bytes{task} gauge    a running task's memory use
corral_agent_tasks{state}                  gauge    tasks by the supervisor's state
corral_agent_polls_total                   counter  the master's polls answered
corral_agent_ls_reserved_cores             gauge    CPU latency-sensitive tasks hold (colocation.py)
corral_agent_batch_cpu_cap_cores{task}     gauge    a batch task's CPU cap while it is capped
=========================================  =======  ==============================================

Read from the runner when scraped; one registry per agent (hollow agents share a process).
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AgentMetrics:
    def __init__(self, agent: Any):
        self.agent = agent
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def rendered(self) -> bytes:
        return generate_latest(self.registry)

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        runner = self.agent.runner
        statuses = runner.statuses()
        yield CounterMetricFamily("corral_agent_task_starts", "Task processes started", value=runner.starts)
        yield CounterMetricFamily("corral_agent_task_start_failures", "Task processes that could not be started",
                                  value=runner.start_failures)
        yield CounterMetricFamily("corral_agent_polls", "Polls of the master answered",
                                  value=getattr(self.agent, "polls", 0))
        restarts = CounterMetricFamily("corral_agent_task_restarts", "Restarts of a task in its placement",
                                       labels=["task"])
        cpu = GaugeMetricFamily("corral_agent_task_cpu_usage_cores", "CPU a running task uses, in cores",
                                labels=["task"])
        memory = GaugeMetricFamily("corral_agent_task_memory_usage_bytes", "Memory a running task uses",
                                   labels=["task"])
        states: Tally = Tally()
        for s in statuses:
            name = str(s.get("name") or s["task_id"])
            states[str(s["state"])] += 1
            restarts.add_metric([name], s.get("restarts") or 0)
            if s["state"] == "running":
                usage = s.get("usage") or {}
                cpu.add_metric([name], usage.get("cpu_milli", 0) / 1000.0)
                memory.add_metric([name], usage.get("memory_bytes", 0))
        yield restarts
        yield cpu
        yield memory
        tasks = GaugeMetricFamily("corral_agent_tasks", "Tasks by state", labels=["state"])
        for state, n in sorted(states.items()):
            tasks.add_metric([state], n)
        yield tasks
        decision = runner.colocator.last if getattr(runner, "colocator", None) is not None else None
        if decision is not None:
            yield GaugeMetricFamily("corral_agent_ls_reserved_cores", "CPU latency-sensitive tasks hold, in cores",
                                    value=decision.ls_reserved_milli / 1000.0)
            caps = GaugeMetricFamily("corral_agent_batch_cpu_cap_cores", "A capped batch task's CPU cap, in cores",
                                     labels=["task"])
            for task_id, cap in sorted(decision.caps.items()):
                if cap is not None:
                    caps.add_metric([task_id], cap / 1000.0)
            yield caps
