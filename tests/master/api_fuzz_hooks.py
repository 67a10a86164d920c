"""Schemathesis hooks for tests/master/test_api_fuzz.py: the rules of the API that JSON Schema
cannot state (corral/master/openapi_rules.py names them), taught to the positive cases only, so
``positive_data_acceptance`` and ``negative_data_rejection`` both stay on for every operation.

* ``after`` must name an existing job of the same user: a positive case waits for no job;
* ``alloc`` must name an existing alloc set of the same user: a positive case runs in none;
* ``scheduler`` must name a scheduler profile of the cell: a positive case takes the default one;
* ``min_tasks`` is at most ``tasks``: a positive case's is cut to it;
* named ports' fixed numbers must be distinct: a repeated number becomes 0 (any free port);
* ``PUT /jobs/{job}``: the body's name and user are the path's (or left out);
* a gang: ``min_tasks`` at most ``tasks``, and not beside ``gang: true``;
* ``opportunistic`` only below the production band and not in a gang (``gang``, ``min_tasks``):
  a positive case that asks for both runs no opportunistic tasks;
* an alloc set holds no GPUs, and its failure-domain fields (``spread``, ``max_per_domain``) are
  not yet stated by its schema as the job's are: a positive alloc-set case leaves them out.

And one of the run's own: ``watch=true`` (``/events``, ``/names/{job}``) holds the answer open
for up to an hour, which a fuzzer reads as a timeout, so any case asks ``watch=false`` (the same
operation answering at once); a case whose ``watch`` is not a boolean keeps it.

And two for the run's time (a number over the schema's 100,000 stays, to be refused):
a submission that is not a dry run asks for at most 100 tasks: jobs of 0-CPU tasks cost no
quota, so boundary cases would fill the fuzz master's cell (in validate mode: every command
checks the whole state) with hundreds of thousands of tasks; and a dry run asks for at most
2,000: one of 100,000 plans every task (10-25 s on a 2-core machine; a slow test of
test_dry_run.py runs it), and a few of them would spend the run's 30 s on one operation.

Loaded through ``SCHEMATHESIS_HOOKS=tests.master.api_fuzz_hooks``.
"""

from __future__ import annotations

from typing import Any

import schemathesis

JOB_BODIES = {("POST", "/api/v1/jobs"), ("PUT", "/api/v1/jobs/{job}")}


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def taught(method: str, path: str, body: dict[str, Any], path_parameters: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the rules above applied (a new dict)."""
    body = dict(body)
    if body.get("after") is not None:
        body["after"] = None
    if body.get("alloc") is not None:  # it must name an existing alloc set of the same user
        body["alloc"] = None
    if body.get("scheduler") is not None:  # it must name a profile of the cell's configuration
        body["scheduler"] = None
    tasks = body.get("tasks", 1)
    if isinstance(body.get("min_tasks"), int) and isinstance(tasks, int) and body["min_tasks"] > tasks:
        body["min_tasks"] = tasks  # at most the job's tasks
    resources = body.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("ports"), dict):
        seen: set[int] = set()
        ports = {}
        for name, port in resources["ports"].items():
            ports[name] = 0 if port in seen else port
            if port:
                seen.add(port)
        body["resources"] = {**resources, "ports": ports}
    tasks, least = body.get("tasks", 1), body.get("min_tasks")
    number = (int, float)  # an integral JSON number is an integer to the API
    if isinstance(least, number) and not isinstance(least, bool):
        if body.get("gang") is True:
            body["min_tasks"] = None
        elif isinstance(tasks, number) and not isinstance(tasks, bool) and least > tasks:
            body["min_tasks"] = max(1, int(tasks))
    chance = body.get("opportunistic")
    if chance is not None and chance is not False and chance != 0:
        priority = body.get("priority", 2)
        if body.get("gang") or body.get("min_tasks") or (isinstance(priority, (int, float)) and priority >= 9):
            body["opportunistic"] = False
    if body.get("kind") == "allocset":
        body.pop("spread", None)
        body.pop("max_per_domain", None)
        if isinstance(body.get("resources"), dict):
            body["resources"] = {k: v for k, v in body["resources"].items() if k not in ("gpu", "gpu_milli", "gpu_model")}
    if method == "PUT":
        name, _, user = str(path_parameters.get("job", "")).partition(".")
        if "name" in body:
            body["name"] = name
        body.pop("owner", None)
        if user:
            body["user"] = user
        else:
            body.pop("user", None)  # the caller's job
    return body


def _dry_run(query: Any) -> bool:
    return isinstance(query, dict) and query.get("dry_run") in (True, "true", "True", "1", 1)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    operation = case.operation
    key = (operation.method.upper(), operation.path)
    if key in JOB_BODIES and _positive(case) and isinstance(case.body, dict):
        case.body = taught(key[0], key[1], case.body, case.path_parameters or {})
    if key in JOB_BODIES and isinstance(case.body, dict):
        most = 2000 if _dry_run(case.query) else 100
        tasks = case.body.get("tasks")
        if isinstance(tasks, int) and not isinstance(tasks, bool) and most < tasks <= 100_000:
            case.body = {**case.body, "tasks": most}
    if isinstance(case.query, dict) and case.query.get("watch") in (True, "true"):
        case.query = {**case.query, "watch": False}
    return case
