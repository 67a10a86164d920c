"""Dry runs (dry_run.py): what a submit or an update would do, from the master's own code on a copy."""

from __future__ import annotations

import pytest

from corral.master import dry_run
from corral.master.commands import Submit
from corral.master.errors import AdmissionError
from corral.master.quota import Quotas
from corral.model.job import TaskState

from tests.master.conftest import auth
from tests.master.helpers import Harness, spec


def scratch(h: Harness):
    return dry_run.scratch_of(h.core)


def test_a_dry_submit_says_where_each_task_would_go_and_what_stays_pending_without_changing_anything():
    h = Harness()
    h.machine("m1", cpu="2")
    h.machine("m2", cpu="1")
    before, seq = h.state.to_dict(), h.state.seq
    answer = dry_run.dry_submit(scratch(h), spec("web", tasks=4))
    assert answer["job"] == "web.alice" and answer["admitted"] and answer["preempted"] == []
    placed = {p["task"]: p["machine"] for p in answer["placed"]}
    assert sorted(placed.values()) == ["m1", "m1", "m2"]
    assert all(isinstance(p["score"], float) for p in answer["placed"])
    (waiting,) = answer["pending"]
    assert waiting["task"] not in placed and "insufficient cpu" in waiting["reason"]
    assert h.state.to_dict() == before and h.state.seq == seq and "web.alice" not in h.state.jobs


def test_a_dry_submit_names_the_tasks_it_would_preempt_with_their_priority():
    h = Harness()
    h.machine("m1", cpu="2")
    h.submit("batch", tasks=2, priority=2)
    h.schedule()
    answer = dry_run.dry_submit(scratch(h), spec("prod", priority=9, cpu="2"))
    assert [p["machine"] for p in answer["placed"]] == ["m1"]
    victims = sorted((v["job"], v["task"], v["priority"], v["by"]) for v in answer["preempted"])
    assert victims == [("batch.alice", f"{i}.batch.alice.local", 2, "0.prod.alice.local") for i in range(2)]
    assert all(t.state is TaskState.RUNNING for t in h.state.tasks_of("batch.alice"))  # the live cell is untouched


def test_a_dry_submit_over_quota_is_refused_as_the_submit_would_be():
    h = Harness(quotas=Quotas.parse({"alice": {"batch": {"cpu": 1, "memory": "1Gi"}}}))
    h.machine("m1")
    with pytest.raises(AdmissionError) as refused:
        dry_run.dry_submit(scratch(h), spec("big", tasks=3, priority=2))
    assert refused.value.status in (403, 422) and "quota" in str(refused.value.errors).lower()
    assert "big.alice" not in h.state.jobs


def test_a_dry_update_lists_the_restart_waves_in_order_within_max_unavailable():
    h = Harness()
    h.machine("m1", cpu="16", memory="64Gi")
    h.submit("web", tasks=5)
    h.schedule()
    versions = [t.version for t in h.state.tasks_of("web.alice")]
    answer = dry_run.dry_update(scratch(h), spec("web", tasks=5, memory="2Gi"), max_unavailable=2)
    assert answer["restart"] is True and "resources" in " ".join(answer["changed"])
    assert answer["waves"] == [[f"{i}.web.alice.local" for i in (0, 1)], [f"{i}.web.alice.local" for i in (2, 3)],
                               ["4.web.alice.local"]]
    assert answer["restarts"] == 5 and answer["pending"] == []
    assert [t.version for t in h.state.tasks_of("web.alice")] == versions
    assert all(t.state is TaskState.RUNNING for t in h.state.tasks_of("web.alice"))


def test_a_dry_update_that_changes_only_the_priority_restarts_nothing():
    h = Harness()
    h.machine("m1")
    h.submit("web", tasks=2, priority=2)
    h.schedule()
    answer = dry_run.dry_update(scratch(h), spec("web", tasks=2, priority=3))
    assert answer["changed"] == ["priority"] and answer["waves"] == [] and answer["restarts"] == 0
    assert h.state.jobs["web.alice"].spec.priority == 2


def test_the_scratch_core_does_not_share_the_live_state_or_scheduler():
    h = Harness()
    h.machine("m1")
    s = scratch(h)
    assert s.state is not h.core.state and s.scheduler is not h.core.scheduler
    s.handle(Submit(spec("x")))
    assert "x.alice" in s.state.jobs and "x.alice" not in h.state.jobs


# ---- over HTTP ------------------------------------------------------------------------------------

def machine(name: str) -> dict:
    return {"name": name, "address": f"http://127.0.0.2:{7101}", "capacity": {"cpu": 2000, "memory": 2**33, "disk": 0,
                                                                            "gpu": 0}, "gpu_model": "", "attributes": {},
            "isolation": "rlimit"}


def test_post_and_put_with_dry_run_answer_the_plan_and_store_nothing(client):
    alice, agent = auth("t-alice"), auth("t-m1")
    assert client.post("/agents/register", json=machine("m1"), headers=agent).status_code == 200
    job = {"name": "web", "tasks": 3, "resources": {"cpu": "1", "memory": "1Gi"}}
    dry = client.post("/jobs?dry_run=true", json=job, headers=alice)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and len(body["placed"]) == 2 and len(body["pending"]) == 1
    assert client.get("/jobs/web", headers=alice).status_code == 404  # nothing was stored
    bad = client.post("/jobs?dry_run=true", json={**job, "tasks": -1}, headers=alice)
    assert bad.status_code in (400, 422) and bad.json()["errors"][0]["field"].startswith("tasks")
    assert client.post("/jobs?dry_run=true", json=job).status_code == 401
    assert client.post("/jobs", json={**job, "tasks": 2}, headers=alice).status_code == 201
    update = client.put("/jobs/web?dry_run=true", json={"tasks": 2, "resources": {"cpu": "1", "memory": "2Gi"}},
                        headers=alice)
    assert update.status_code == 200, update.text
    assert update.json()["restart"] is True and update.json()["dry_run"] is True
    assert client.get("/jobs/web", headers=alice).json()["version"] == 1


def test_a_dry_submit_of_an_alloc_set_says_where_its_allocs_would_go():
    h = Harness()
    h.machine("m1", cpu="4")
    answer = dry_run.dry_submit(scratch(h), {"kind": "allocset", "name": "web-allocs", "user": "alice", "count": 2,
                                             "resources": {"cpu": "1", "memory": "1Gi"}})
    assert answer["job"] == "web-allocs.alice" and [p["machine"] for p in answer["placed"]] == ["m1", "m1"]
    assert "web-allocs.alice" not in h.state.jobs, "nothing was stored"


@pytest.mark.slow
def test_a_dry_submit_of_the_largest_job_plans_every_task_and_answers_a_bounded_list():
    # the schema's bound: 100,000 tasks (the fuzz run keeps its dry runs smaller, for its time)
    h = Harness()
    for name in ("m1", "m2", "m3"):
        h.machine(name, cpu="4")
    before = h.state.to_dict()
    answer = dry_run.dry_submit(scratch(h), spec("huge", tasks=100_000, cpu="0", memory="0"))
    assert answer["placed_count"] == 100_000 and len(answer["placed"]) == dry_run.MAX_PLACED_SHOWN
    assert answer["pending_count"] == 0 and answer["pending"] == []
    assert h.state.to_dict() == before
