"""The HTTP API through real HTTP: jobs, tasks, machines, auth, and bad input that never gives a 500."""

from __future__ import annotations

import time

import pytest

from tests.master.conftest import auth

ALICE, BOB, OPS, AGENT = auth("t-alice"), auth("t-bob"), auth("t-ops"), auth("t-agent")
AGENT_BODY = {"name": "m1", "address": "http://127.0.0.1:7101",
              "capacity": {"cpu": 8000, "memory": 17179869184, "disk": 0, "gpu": 0},
              "gpu_model": "", "attributes": {"rack": "r1"}, "isolation": "cgroup-v1"}


def web(**fields):
    return {"name": "web", "tasks": 2, "resources": {"cpu": "1", "memory": "1Gi"}, **fields}


def wait_for(fetch, predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last value {value}"
        time.sleep(0.02)


def agent_reported(server, name, **status):
    """Leave what the core keeps of an agent's last status of a task (``TaskRecord.agent``); these
    tests run no agents."""
    with server.master.lock:
        task = server.master.core.state.tasks[name]
        task.agent = {"task_id": name, "generation": task.generation, "state": "running", "restarts": 0, **status}


def test_an_agent_registers_its_machine_as_the_protocol_says(client):
    r = client.post("/agents/register", json=AGENT_BODY, headers=AGENT)
    assert r.status_code == 200 and r.json() == {"machine": "m1", "poll_interval_s": 2.0}
    again = client.post("/agents/register", json={**AGENT_BODY, "address": "http://127.0.0.1:7102"}, headers=AGENT)
    assert again.status_code == 200
    machines = client.get("/machines", headers=ALICE).json()["machines"]
    assert [(m["name"], m["address"], m["capacity"]["cpu"]) for m in machines] == [("m1", "http://127.0.0.1:7102", 8000)]
    assert client.post("/agents/register", json=AGENT_BODY, headers=ALICE).status_code == 403
    assert client.post("/agents/register", json=AGENT_BODY).status_code == 401


def test_submit_schedule_and_resolve_a_task_name_to_its_machine_and_port(server, client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()
    r = client.post("/jobs", json=web(resources={"cpu": "1", "memory": "1Gi", "ports": [8080]}, tasks=1), headers=ALICE)
    assert r.status_code == 201 and r.json()["job"] == "web.alice"
    task = wait_for(lambda: client.get("/tasks/0.web.alice.local", headers=BOB).json(), lambda t: t["state"] == "starting")
    assert (task["machine"], task["address"], task["ports"]) == ("m1", "http://127.0.0.1:7101", [8080])
    assert (task["detail"], task["restarts"], task["last_exit"]) == ("starting on m1", 0, None)
    agent_reported(server, "0.web.alice.local")
    assert client.get("/tasks/web.alice/0", headers=BOB).json()["state"] == "running"
    assert client.get("/jobs/web", headers=ALICE).json()["task_states"]["running"] == 1


def test_submit_is_idempotent_with_a_request_id(client):
    first = client.post("/jobs", json=web(), headers={**ALICE, "X-Request-Id": "abc"})
    again = client.post("/jobs", json=web(), headers={**ALICE, "X-Request-Id": "abc"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["job"] == first.json()["job"]
    assert client.get("/jobs", headers=ALICE).json()["count"] == 1


def test_list_filters_by_user_and_state(client):
    client.post("/jobs", json=web(), headers=ALICE).raise_for_status()
    client.post("/jobs", json=web(name="db"), headers=BOB).raise_for_status()
    client.post("/jobs/web/kill", headers=ALICE).raise_for_status()
    jobs = client.get("/jobs", params={"user": "bob"}, headers=ALICE).json()["jobs"]
    assert [j["job"] for j in jobs] == ["db.bob"]
    dead = client.get("/jobs", params={"state": "dead"}, headers=ALICE).json()["jobs"]
    assert [j["job"] for j in dead] == ["web.alice"]
    tasks = client.get("/tasks", params={"user": "bob", "state": "pending"}, headers=ALICE).json()
    assert tasks["count"] == 2


def test_why_a_task_is_pending_gives_the_record_and_one_sentence(client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()
    client.post("/jobs", json=web(resources={"cpu": "16", "memory": "1Gi"}, tasks=1), headers=ALICE).raise_for_status()
    why = wait_for(lambda: client.get("/jobs/web/tasks/0/why", headers=ALICE).json(),
                   lambda w: w["explanation"] is not None)
    assert why["summary"].startswith("0/1 machines are available: 1 insufficient cpu.")
    record = why["explanation"]
    assert {**record["filtered"], **record.get("exhausted", {})} == {"insufficient cpu": 1}
    assert client.get("/tasks/web/0/why", headers=ALICE).json()["summary"] == why["summary"]


def test_machines_filter_by_label(client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()
    client.post("/machines", json={**AGENT_BODY, "name": "m2", "attributes": {"rack": "r2"}}, headers=OPS).raise_for_status()
    names = [m["name"] for m in client.get("/machines", params={"label": "rack=r2"}, headers=ALICE).json()["machines"]]
    assert names == ["m2"]
    assert client.get("/machines", params={"label": "rack"}, headers=ALICE).json()["errors"][0]["field"] == "label"
    client.post("/jobs", json=web(tasks=1, constraints=["rack == r2"]), headers=ALICE).raise_for_status()
    on_r2 = wait_for(lambda: client.get("/tasks", params={"label": "rack=r2"}, headers=ALICE).json(),
                     lambda t: t["count"] == 1)
    assert on_r2["tasks"][0]["machine"] == "m2"
    assert client.get("/tasks", params={"label": "rack=r1"}, headers=ALICE).json()["count"] == 0


def test_update_priority_in_place_and_resources_by_rolling_restart(server, client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()
    client.post("/jobs", json=web(), headers=ALICE).raise_for_status()
    wait_for(lambda: client.get("/jobs/web", headers=ALICE).json(), lambda j: j["task_states"]["starting"] == 2)
    for index in (0, 1):
        agent_reported(server, f"{index}.web.alice.local")
    r = client.put("/jobs/web", json=web(priority=9), headers=ALICE)
    assert r.status_code == 200 and r.json()["restart"] is False and r.json()["changed"] == ["priority"]
    r = client.put("/jobs/web", params={"max_unavailable": 1}, json=web(priority=9, resources={"cpu": "1", "memory": "2Gi"}),
                   headers=ALICE)
    assert r.json()["restart"] is True
    # placed again: the agents' reports are of the old generation, so the tasks are starting
    job = wait_for(lambda: client.get("/jobs/web", headers=ALICE).json(),
                   lambda j: all(t["version"] == j["version"] and t["state"] == "starting" for t in j["task_list"]))
    assert all(t["generation"] == 2 for t in job["task_list"])
    events = client.get("/jobs/web/events", headers=ALICE).json()["events"]
    vias = [e["via"] for e in events if e["object"] == "0.web.alice.local"]
    assert vias == ["submit", "schedule", "update", "restart", "schedule"]
    assert all(e["cmd"] for e in events)


def test_a_job_over_quota_is_rejected_with_the_numbers(client):
    r = client.post("/jobs", json=web(priority=9, tasks=10), headers=ALICE)
    assert r.status_code == 422
    body = r.json()
    assert body["errors"][0]["field"] == "quota.production.cpu" and "quota of 8" in body["message"]
    assert client.get("/jobs", headers=ALICE).json()["count"] == 0


def test_no_token_is_401_and_another_users_job_is_403(client):
    assert client.get("/jobs").status_code == 401
    assert client.get("/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/jobs", headers={"Authorization": "Basic abc"}).json()["errors"][0]["field"] == "authorization"
    client.post("/jobs", json=web(), headers=ALICE).raise_for_status()
    assert client.post("/jobs/web.alice/kill", headers=BOB).status_code == 403
    assert client.put("/jobs/web.alice", json=web(user="alice"), headers=BOB).status_code == 403
    assert client.post("/jobs", json=web(user="alice", name="x"), headers=BOB).status_code == 403
    assert client.post("/jobs", json=web(name="y"), headers=AGENT).status_code == 403
    assert client.post("/machines", json=AGENT_BODY, headers=ALICE).status_code == 403
    assert client.get("/jobs/web.alice", headers=BOB).json()["state"] == "pending"
    assert client.delete("/jobs/web.alice", headers=OPS).json()["state"] == "killed"


BAD_SUBMISSIONS = [
    ("an empty body", b"", "body"),
    ("malformed JSON", b'{"name": "web",', "body"),
    ("a JSON list", b"[1, 2]", "body"),
    ("a string", b'"web"', "body"),
    ("a missing resources field", b'{"name": "web"}', "resources"),
    ("an unknown field", b'{"name": "web", "resources": {"cpu": 1, "memory": "1Gi"}, "colour": "red"}', "colour"),
    ("a bad memory quantity", b'{"name": "web", "resources": {"cpu": 1, "memory": "12 parsecs"}}', "resources.memory"),
    ("a priority out of range", b'{"name": "web", "priority": 99, "resources": {"cpu": 1, "memory": "1Gi"}}', "priority"),
    ("a bad name", b'{"name": "Web Server", "resources": {"cpu": 1, "memory": "1Gi"}}', "name"),
    ("a constraint that does not parse", b'{"name": "w", "constraints": ["rack ~ r1"], "resources": {"cpu": 1, "memory": "1Gi"}}', "constraints"),
    ("a non-UTF-8 body", b'\xff\xfe{', "body"),
    ("a wrongly typed task count", b'{"name": "w", "tasks": "many", "resources": {"cpu": 1, "memory": "1Gi"}}', "tasks"),
    ("deeply nested garbage", b'{"name": {"a": [{"b": null}]}, "resources": 7}', "name"),
]


@pytest.mark.parametrize("what,body,field", BAD_SUBMISSIONS, ids=[b[0] for b in BAD_SUBMISSIONS])
def test_a_bad_submission_is_a_4xx_naming_the_field_and_changes_nothing(client, what, body, field):
    r = client.post("/jobs", content=body, headers={**ALICE, "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert client.get("/cell", headers=ALICE).json()["seq"] == 0


BAD_REQUESTS = [
    ("register with a bad capacity", "POST", "/machines", {"name": "m1", "capacity": {"cpu": "lots", "memory": 1}}, "capacity.cpu"),
    ("register without a name", "POST", "/machines", {"capacity": {"cpu": 1, "memory": 1}}, "name"),
    ("register with a list body", "POST", "/machines", [1], "body"),
    ("register with an unknown field", "POST", "/machines", {"name": "m", "capacity": {"cpu": 1, "memory": 1}, "x": 1}, "x"),
    ("a job reference with too many dots", "GET", "/jobs/a.b.c", None, "job"),
    ("a task reference that is not a name", "GET", "/tasks/nonsense", None, "task"),
    ("an unknown job", "GET", "/jobs/nosuch", None, "job"),
    ("a negative max_unavailable", "PUT", "/jobs/web?max_unavailable=0", web(), "max_unavailable"),
    ("a list limit that is not a number", "GET", "/jobs?limit=lots", None, "limit"),
    ("an update of a job that does not exist", "PUT", "/jobs/nosuch", web(name="nosuch"), "job"),
    ("an update whose spec names another job", "PUT", "/jobs/web", web(name="other"), "name"),
]


@pytest.mark.parametrize("what,method,path,body,field", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_are_4xx_naming_the_field(client, what, method, path, body, field):
    r = client.request(method, path, json=body, headers=OPS)
    assert 400 <= r.status_code < 500, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


def test_the_openapi_description_is_served(server):
    import httpx

    doc = httpx.get(server.url + "/openapi.json").json()
    paths = doc["paths"]
    assert "/api/v1/jobs" in paths and "/api/v1/agents/register" in paths
    body = paths["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Submission"}  # a job or an alloc set
    schemas = doc["components"]["schemas"]
    assert [s["$ref"].rsplit("/", 1)[1] for s in schemas["Submission"]["oneOf"]] == ["JobSpec", "AllocSetSpec"]
    assert "resources" in schemas["JobSpec"]["properties"] and "ResourcesSpec" in schemas
    assert "count" in schemas["AllocSetSpec"]["properties"] and "user" not in schemas["AllocSetSpec"]["required"]
    assert "/api/v1/allocs" in paths and "/api/v1/allocs/{allocset}" in paths
    listed = paths["/api/v1/allocs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/AllocSetList"}
    assert "capacity" in schemas["MachineRegistration"]["properties"]


def test_an_unknown_path_is_a_json_404(client):
    r = client.get("/nope", headers=ALICE)
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_a_bug_is_a_json_500_and_leaves_log_and_memory_equal(server, client, monkeypatch):
    from corral.master import jobs
    from corral.master.core import MasterCore

    core = server.master.core

    def broken_reply(job):
        raise RuntimeError("a bug after the event was applied")

    with monkeypatch.context() as patch:
        patch.setattr(jobs, "job_reply", broken_reply)
        r = client.post("/jobs", json=web(), headers=ALICE)
    assert r.status_code == 500 and r.json()["error"] == "internal"

    def log_matches_memory():
        with server.master.lock:
            return MasterCore.rebuild(server.master.store).to_dict() == core.state.to_dict()

    wait_for(log_matches_memory, bool)
    assert core.state.jobs["web.alice"].state.value == "pending"
    assert client.post("/jobs", json=web(name="next"), headers=ALICE).status_code == 201


@pytest.mark.parametrize("ref", ["web/²", "².web.alice.local", "web/99999999999", "web/-1"])
def test_odd_task_indexes_are_a_4xx(client, ref):
    r = client.get(f"/tasks/{ref}/why", headers=ALICE)
    assert 400 <= r.status_code < 500 and r.json()["errors"][0]["field"] == "task"


def test_every_operation_documents_its_answer_errors_and_the_bearer_scheme(server):
    import httpx

    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert op.get("security") == [{"HTTPBearer": []}], where
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok, where
            for code, answer in op["responses"].items():
                content = answer.get("content", {})
                assert content, f"{where} {code} has no body"
                schema = next(iter(content.values()))["schema"]
                assert schema and schema != {}, f"{where} {code} answers an empty schema"
                ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                if ref:
                    assert schemas[ref].get("properties"), f"{where} {code}: {ref} has no properties"
                if not code.startswith("2"):
                    assert ref == "ErrorBody", f"{where} {code}"
            assert "401" in op["responses"] and "400" in op["responses"], where
    assert "HTTPValidationError" not in schemas, "bad parameters are 400 ErrorBody, not the framework's 422"
    assert set(doc["paths"]["/api/v1/jobs"]["post"]["responses"]) >= {"200", "201", "409", "413", "422", "503"}


STATE_FILTERS = [
    ("jobs", "zombie", "pending, running, succeeded, failed, killed, dead"),
    ("tasks", "zombie", "pending, starting, running, restarting, succeeded, failed, killed, dead"),
    ("machines", "down", "up or lost"),
]


@pytest.mark.parametrize("what,word,accepted", STATE_FILTERS, ids=[f"an unknown {f[0]} state" for f in STATE_FILTERS])
def test_an_unknown_state_filter_is_a_400_naming_state_and_the_accepted_words(client, what, word, accepted):
    r = client.get(f"/{what}", params={"state": word}, headers=ALICE)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "state"
    assert accepted in r.json()["message"] and repr(word) in r.json()["message"]


@pytest.mark.parametrize("word", ["pending", "running", "succeeded", "failed", "killed", "dead"])
def test_every_job_word_is_a_filter(client, word):
    client.post("/jobs", json=web(), headers=ALICE).raise_for_status()
    r = client.get("/jobs", params={"state": word}, headers=ALICE)
    assert r.status_code == 200 and r.json()["count"] == (1 if word == "pending" else 0)


def test_task_filters_take_the_words_and_running_means_placed(server, client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()
    client.post("/jobs", json=web(), headers=ALICE).raise_for_status()
    wait_for(lambda: client.get("/tasks", params={"state": "running"}, headers=ALICE).json(), lambda t: t["count"] == 2)
    agent_reported(server, "1.web.alice.local", state="backoff", restarts=2, exit_code=1, last_error="exit code 1")
    names = {w: [t["name"] for t in client.get("/tasks", params={"state": w}, headers=ALICE).json()["tasks"]]
             for w in ("starting", "restarting", "running", "dead")}
    assert names == {"starting": ["0.web.alice.local"], "restarting": ["1.web.alice.local"],
                     "running": ["0.web.alice.local", "1.web.alice.local"], "dead": []}
    task = client.get("/tasks/web/1", headers=ALICE).json()
    assert (task["restarts"], task["last_exit"]) == (2, {"code": 1, "error": "exit code 1"})
    assert task["detail"] == "restarting: 2 restarts, last: exit 1"


def test_a_bad_query_parameter_is_a_400_with_what_came(client):
    r = client.get("/jobs", params={"limit": "lots"}, headers=ALICE)
    assert r.status_code == 400 and r.json()["errors"] == [
        {"field": "limit", "message": "expected a valid integer, unable to parse string as an integer, got 'lots'"}]
