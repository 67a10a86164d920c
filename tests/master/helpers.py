"""Shared helpers for master tests: a core on a manual clock with a memory store."""

from __future__ import annotations

from typing import Any

from corral.master.clock import ManualClock
from corral.master.commands import RegisterMachine, Submit
from corral.master.core import MasterCore, Outcome
from corral.master.quota import Quotas
from corral.store.memory import MemoryStore


class Harness:
    """A core in validate mode whose events go to a memory store, as the live master's would."""

    def __init__(self, quotas: Quotas | None = None, **args: Any):
        self.clock = ManualClock(1000.0)
        self.store = MemoryStore()
        self.core = MasterCore(clock=self.clock, quotas=quotas, validate=True, **args)

    @property
    def state(self):
        return self.core.state

    def run(self, cmd: Any) -> Outcome:
        out = self.core.handle(cmd)
        self.store.append([e.to_dict() for e in out.events])
        return out

    def schedule(self) -> Outcome:
        out = self.core.schedule()
        self.store.append([e.to_dict() for e in out.events])
        return out

    def commit(self, rnd, plan) -> Outcome:
        out = self.core.commit(rnd, plan)
        self.store.append([e.to_dict() for e in out.events])
        return out

    def machine(self, name: str, cpu: str = "4", memory: str = "8Gi", **attributes: str) -> Outcome:
        return self.run(RegisterMachine(name, {"cpu": cpu, "memory": memory}, address=f"http://{name}",
                                        attributes=attributes))

    def submit(self, name: str, user: str = "alice", tasks: int = 1, cpu: str = "1", memory: str = "1Gi",
               **fields: Any) -> Outcome:
        spec = {"name": name, "user": user, "tasks": tasks, "resources": {"cpu": cpu, "memory": memory}, **fields}
        return self.run(Submit(spec, request_id=fields.pop("request_id", None)))

    def task(self, job: str, index: int = 0, user: str = "alice"):
        return self.state.tasks[f"{index}.{job}.{user}.local"]


def spec(name: str, user: str = "alice", tasks: int = 1, cpu: str = "1", memory: str = "1Gi", **fields: Any):
    return {"name": name, "user": user, "tasks": tasks, "resources": {"cpu": cpu, "memory": memory}, **fields}
