"""Admission: every refusal names its field and changes nothing; updates say what changed and how."""

from __future__ import annotations

import pytest

from corral.master.admission import admit_machine, admit_update, parse_spec
from corral.model.quantity import parse_capacity_mapping as machine_capacity
from corral.master.commands import AgentReport, Kill, RegisterMachine, Submit, Update
from corral.master.errors import AdmissionError
from corral.master.quota import Quotas
from corral.model.spec import JobSpec

from tests.master.helpers import Harness, spec

QUOTA = Quotas.parse({"alice": {"batch": {"cpu": 4, "memory": "8Gi"}, "production": {"cpu": 2, "memory": "4Gi"}}})


def finish(h: Harness, job: str) -> None:
    task = h.task(job)
    h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": "finished",
                                      "exit_code": 0}]))


def fail_for_good(h: Harness, job: str) -> None:
    task = h.task(job)
    h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": "failed",
                                      "exit_code": 1, "failures": 5}]))


# (case, setup, the submitted spec, status, field, a phrase of the message)
SUBMIT_REFUSALS = [
    ("a spec whose memory is not a byte quantity is refused naming resources.memory",
     None, spec("web", memory="12 parsecs"), 400, "resources.memory", "byte quantity"),
    ("a spec whose cpu is beyond what corral holds is refused naming resources.cpu",
     None, spec("web", cpu="1000000"), 400, "resources.cpu", ""),
    ("a spec with an unknown field is refused naming that field",
     None, {**spec("web"), "colour": "blue"}, 400, "colour", ""),
    ("a spec with a bad job name is refused naming the name",
     None, spec("Web!"), 400, "name", ""),
    ("a second live job of the same name is a conflict",
     "live web", spec("web"), 409, "name", "already exists and is pending"),
    ("a job after a job that does not exist is refused naming after",
     None, spec("main", after="prep"), 422, "after", "there is no job prep"),
    ("a job after a killed job is refused: it will never succeed",
     "killed prep", spec("main", after="prep"), 422, "after", "job prep killed, it will never succeed"),
    ("a job after a failed job is refused: it will never succeed",
     "failed prep", spec("main", after="prep"), 422, "after", "job prep failed, it will never succeed"),
    ("a batch job over the user's cpu quota is refused naming quota.batch.cpu",
     "quota", spec("big", tasks=5), 422, "quota.batch.cpu", "over the quota of 4"),
    ("a batch job over the user's memory quota is refused naming quota.batch.memory",
     "quota", spec("big", memory="9Gi"), 422, "quota.batch.memory", "memory in band batch"),
    ("a production job over the production quota is refused naming quota.production.cpu",
     "quota", spec("prod", tasks=3, priority=9), 422, "quota.production.cpu", "user alice would use 3 cpu"),
    ("a user without a quota entry has none in any band",
     "quota", spec("web", user="bob"), 422, "quota.batch.cpu", "over the quota of 0"),
]


def _setup(h: Harness, setup: str | None) -> None:
    if setup == "live web":
        h.submit("web")
    elif setup == "killed prep":
        h.submit("prep")
        h.run(Kill("prep.alice"))
    elif setup == "failed prep":
        h.machine("m1")
        h.core.failover_machines = 1
        h.submit("prep")
        h.schedule()
        fail_for_good(h, "prep")


@pytest.mark.parametrize("case,setup,body,status,field,phrase", SUBMIT_REFUSALS, ids=[c[0] for c in SUBMIT_REFUSALS])
def test_a_refused_submission_names_its_field_and_changes_nothing(case, setup, body, status, field, phrase):
    h = Harness(quotas=QUOTA if setup == "quota" else None)
    _setup(h, setup)
    before = h.state.to_dict()
    with pytest.raises(AdmissionError) as err:
        h.run(Submit(body))
    assert err.value.status == status
    fields = [f for f, _ in err.value.errors]
    assert field in fields, err.value.errors
    assert phrase in dict(err.value.errors)[field]
    assert h.state.to_dict() == before


# (case, setup, after which job is accepted)
SUBMIT_ACCEPTED = [
    ("a job after a pending job is accepted and waits", "pending prep"),
    ("a job after a succeeded job is accepted", "succeeded prep"),
    ("a job of the name of a killed job may be submitted again", "killed prep"),
]


@pytest.mark.parametrize("case,setup", SUBMIT_ACCEPTED, ids=[c[0] for c in SUBMIT_ACCEPTED])
def test_an_accepted_submission_emits_one_job_submitted(case, setup):
    h = Harness()
    h.machine("m1")
    h.submit("prep")
    if setup == "succeeded prep":
        h.schedule()
        finish(h, "prep")
    elif setup == "killed prep":
        h.run(Kill("prep.alice"))
    name = "prep" if setup == "killed prep" else "main"
    fields = {} if setup == "killed prep" else {"after": "prep"}
    out = h.submit(name, **fields)
    assert [e.TYPE for e in out.events] == ["job_submitted"]
    assert out.events[0].job == f"{name}.alice"
    assert out.reply["state"] == "pending" and "duplicate" not in out.reply
    assert h.state.jobs[f"{name}.alice"].state.value == "pending"


def test_a_repeated_request_id_answers_the_first_job_even_with_another_spec():
    h = Harness()
    first = h.run(Submit(spec("web"), request_id="r-1"))
    again = h.run(Submit(spec("other", tasks=3), request_id="r-1"))
    assert again.events == [] and again.effects == []
    assert again.reply == {**first.reply, "duplicate": True}
    assert "other.alice" not in h.state.jobs


def test_a_repeated_request_id_answers_the_first_job_even_once_the_quota_is_used_up():
    h = Harness(quotas=QUOTA)
    first = h.run(Submit(spec("web", tasks=4), request_id="r-1"))  # all of alice's batch cpu
    again = h.run(Submit(spec("other", tasks=4), request_id="r-1"))  # over the quota, were it new
    assert again.events == [] and again.reply["job"] == first.reply["job"] and again.reply["duplicate"]


def test_the_same_request_id_of_another_user_is_another_request():
    h = Harness()
    h.run(Submit(spec("web"), request_id="r-1"))
    out = h.run(Submit(spec("web", user="bob"), request_id="r-1"))
    assert [e.TYPE for e in out.events] == ["job_submitted"] and out.reply["job"] == "web.bob"


def test_parse_spec_hands_a_jobspec_back_as_it_is_and_reads_dicts_into_one():
    parsed = parse_spec(spec("web", cpu="500m"))
    assert isinstance(parsed, JobSpec) and parsed.resources.cpu == 500
    assert parse_spec(parsed) is parsed


# (case, capacity, the fields named)
MACHINE_REFUSALS = [
    ("a capacity that is not a mapping is refused naming capacity", "lots", ["capacity"]),
    ("a capacity without cpu is refused: cpu and memory must be above 0", {"memory": "8Gi"}, ["capacity"]),
    ("a memory quantity that does not parse names capacity.memory", {"cpu": "4", "memory": "8 parsecs"},
     ["capacity.memory", "capacity"]),
    ("a negative integer cpu names capacity.cpu", {"cpu": -1, "memory": "8Gi"}, ["capacity.cpu", "capacity"]),
    ("a boolean cpu is not an integer and names capacity.cpu", {"cpu": True, "memory": "8Gi"},
     ["capacity.cpu", "capacity"]),
    ("a float memory is neither corral's units nor a quantity string", {"cpu": "4", "memory": 1.5},
     ["capacity.memory", "capacity"]),
    ("a fractional gpu count names capacity.gpu", {"cpu": "4", "memory": "8Gi", "gpu": 1.5}, ["capacity.gpu"]),
    ("more than 64 gpus names capacity.gpu", {"cpu": "4", "memory": "8Gi", "gpu": 65}, ["capacity.gpu"]),
    ("a memory beyond what corral holds is refused", {"cpu": "4", "memory": "1000Pi"},
     ["capacity.memory"]),
]


@pytest.mark.parametrize("case,capacity,fields", MACHINE_REFUSALS, ids=[c[0] for c in MACHINE_REFUSALS])
def test_a_bad_machine_capacity_is_refused_naming_each_field(case, capacity, fields):
    h = Harness()
    with pytest.raises(AdmissionError) as err:
        h.run(RegisterMachine("m1", capacity))
    assert err.value.status == 400
    assert [f for f, _ in err.value.errors] == fields, err.value.errors
    assert h.state.machines == {} and h.state.seq == 0


BAD_NAMES = [
    ("an empty machine name is refused", ""),
    ("a machine name with capitals is refused", "M1"),
    ("a machine name with a slash is refused", "rack/m1"),
    ("a machine name of 129 characters is refused", "m" * 129),
]


@pytest.mark.parametrize("case,name", BAD_NAMES, ids=[c[0] for c in BAD_NAMES])
def test_a_bad_machine_name_is_refused_naming_name(case, name):
    with pytest.raises(AdmissionError) as err:
        admit_machine(RegisterMachine(name, {"cpu": "4", "memory": "8Gi"}))
    assert err.value.status == 400 and [f for f, _ in err.value.errors] == ["name"]


# (case, capacity, corral units)
CAPACITIES = [
    ("integers are corral's units: millicores and bytes", {"cpu": 4000, "memory": 8 * 2**30},
     {"cpu": 4000, "memory": 8 * 2**30, "disk": 0, "gpu": 0}),
    ("strings are quantities people type: cores and Gi", {"cpu": "4", "memory": "8Gi", "disk": "100Gi"},
     {"cpu": 4000, "memory": 8 * 2**30, "disk": 100 * 2**30, "gpu": 0}),
    ("millicore strings are read as millicores", {"cpu": "500m", "memory": "1Gi", "gpu": 2},
     {"cpu": 500, "memory": 2**30, "disk": 0, "gpu": 2}),
]


@pytest.mark.parametrize("case,capacity,units", CAPACITIES, ids=[c[0] for c in CAPACITIES])
def test_a_machine_capacity_reads_into_corrals_units(case, capacity, units):
    assert machine_capacity(capacity) == (units, [])
    h = Harness()
    out = h.run(RegisterMachine("m1", capacity, address="http://m1", attributes={"rack": 1}))
    assert [e.TYPE for e in out.events] == ["machine_registered"]
    assert out.events[0].machine["capacity"] == units and out.events[0].machine["attributes"] == {"rack": "1"}
    assert out.reply == {"machine": "m1", "poll_interval_s": h.core.poll_interval_s}


def test_registering_the_same_machine_again_emits_nothing_and_a_change_emits_one_event():
    h = Harness()
    h.machine("m1")
    assert h.machine("m1").events == []
    out = h.machine("m1", cpu="8")
    assert [e.TYPE for e in out.events] == ["machine_registered"]
    assert h.state.machines["m1"].capacity.cpu == 8000


# ---- updates -----------------------------------------------------------------------------------

# (case, the updated fields, the changed fields, restart)
UPDATES = [
    ("the same spec again changes nothing", {}, [], False),
    ("a new priority is changed in place", {"priority": 5}, ["priority"], False),
    ("a new task count is changed in place", {"tasks": 3}, ["tasks"], False),
    ("new resources restart the tasks", {"cpu": "2"}, ["resources"], True),
    ("a new command restarts the tasks", {"command": "sleep 10"}, ["command"], True),
    ("a new priority and new resources restart the tasks", {"priority": 5, "memory": "2Gi"},
     ["priority", "resources"], True),
]


@pytest.mark.parametrize("case,fields,changed,restart", UPDATES, ids=[c[0] for c in UPDATES])
def test_an_update_says_which_fields_changed_and_whether_tasks_restart(case, fields, changed, restart):
    h = Harness()
    h.submit("web", tasks=2)
    admitted = admit_update(h.state, h.core.quotas, Update(spec("web", tasks=2) | _spec_fields(fields)))
    assert sorted(admitted.changed) == changed and admitted.restart is restart
    out = h.run(Update(spec("web", tasks=2) | _spec_fields(fields)))
    if changed:
        assert [e.TYPE for e in out.events] == ["job_updated"]
        assert out.events[0].restart is restart
        assert out.reply["changed"] == changed and out.reply["restart"] is restart
    else:
        assert out.events == [] and out.reply["changed"] == []


def _spec_fields(fields: dict) -> dict:
    out = {k: v for k, v in fields.items() if k not in ("cpu", "memory")}
    if "cpu" in fields or "memory" in fields:
        out["resources"] = {"cpu": fields.get("cpu", "1"), "memory": fields.get("memory", "1Gi")}
    return out


# (case, setup, the update, max_unavailable, status, field)
UPDATE_REFUSALS = [
    ("max_unavailable 0 is refused naming max_unavailable", None, spec("web", cpu="2"), 0, 400, "max_unavailable"),
    ("a negative max_unavailable is refused naming max_unavailable", None, spec("web"), -1, 400, "max_unavailable"),
    ("an update of a job that does not exist is not found", None, spec("nosuch"), 1, 404, "job"),
    ("an update of a killed job is a conflict: submit it again", "killed", spec("web", cpu="2"), 1, 409, "name"),
    ("changing the job a job waits for is refused naming after", "ordered",
     spec("main", after="other"), 1, 422, "after"),
    ("an update beyond the quota is refused naming the quota", "quota", spec("web", tasks=5), 1, 422,
     "quota.batch.cpu"),
    ("a bad spec in an update is refused naming its field", None, spec("web", memory="lots"), 1, 400,
     "resources.memory"),
]


@pytest.mark.parametrize("case,setup,body,max_unavailable,status,field", UPDATE_REFUSALS,
                         ids=[c[0] for c in UPDATE_REFUSALS])
def test_a_refused_update_names_its_field_and_changes_nothing(case, setup, body, max_unavailable, status, field):
    h = Harness(quotas=QUOTA if setup == "quota" else None)
    h.submit("web")
    if setup == "killed":
        h.run(Kill("web.alice"))
    elif setup == "ordered":
        h.submit("other")
        h.submit("main", after="web")
    before = h.state.to_dict()
    with pytest.raises(AdmissionError) as err:
        h.run(Update(body, max_unavailable=max_unavailable))
    assert err.value.status == status
    assert field in [f for f, _ in err.value.errors], err.value.errors
    assert h.state.to_dict() == before


def test_an_update_within_the_quota_counts_the_job_once_not_twice():
    h = Harness(quotas=QUOTA)
    h.submit("web", tasks=3)  # 3 of 4 cpu: 3 + 4 would be over, 4 alone is not
    out = h.run(Update(spec("web", tasks=4)))
    assert out.reply["changed"] == ["tasks"] and len(h.state.tasks_of("web.alice")) == 4
