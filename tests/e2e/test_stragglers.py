"""A straggler in a real local cell: its second copy on the other agent finishes first, the job succeeds,
the slow first copy's process is killed, and the events say why. Bounded waits; the fixture stops the
cell and checks that no process or cgroup is left behind."""

from __future__ import annotations

from tests.e2e.conftest import alive, wait_until

# Task 0's first copy sleeps 10x longer than every other task and than its own second copy
# (the copy number comes from the environment the agent gives each process).
SCRIPT = ('case "$CORRAL_TASK_ID:$CORRAL_TASK_COPY" in 0.*:0) exec sleep 10;; *) exec sleep 1;; esac')


def test_a_straggler_gets_a_copy_elsewhere_that_finishes_first(fresh_cell):
    cell = fresh_cell
    assert cell.corral("submit", cell.spec("slow", tasks=10, command="sh", args=["-c", SCRIPT])).returncode == 0
    first = wait_until(lambda: next((t for t in cell.tasks("slow") if t["index"] == 0 and t["state"] == "running"),
                                    None), 20, "task 0 to run")
    first_machine = first["machine"]
    name, job_id = first["name"], first["job"]  # the user is the one running the tests
    shown = name.rsplit(".", 1)[0]
    pid = wait_until(lambda: next((t["pid"] for t in cell.agent_state(first_machine)["tasks"]
                                   if t["task_id"] == name and t.get("pid")), None), 10,
                     "the first copy's process")
    job = wait_until(lambda: (lambda j: j if j["state"] not in ("pending", "running") else None)(cell.api("/jobs/slow")),
                     9, "the job to end before the slow copy could have")
    assert job["state"] == "succeeded", job
    events = cell.api(f"/events?job={job_id}")["events"]
    [scheduled] = [e for e in events if e["type"] == "copy_scheduled"]
    assert scheduled["task"] == name and scheduled["machine"] != first_machine
    assert scheduled["detail"]["note"].startswith(f"speculative copy of {shown}: running ")
    assert "siblings' p90" in scheduled["detail"]["note"] and "× 1.5" in scheduled["detail"]["note"]
    print(scheduled["detail"]["note"])
    listed = cell.corral("events", "--job", "slow", "--type", "copy_scheduled,copy_ended")
    assert listed.returncode == 0 and scheduled["detail"]["note"] in listed.stdout, listed.stdout + listed.stderr
    [ended] = [e for e in events if e["type"] == "copy_ended"]
    assert ended["detail"]["via"] == "won" and ended["machine"] == scheduled["machine"]
    finishes = [e for e in events if e["type"] == "task_ended" and e["task"] == name]
    assert [e["detail"]["via"] for e in finishes] == ["finish"]  # counted once
    # the slow first copy is gone: its process killed well before its 10 s were up
    wait_until(lambda: not alive(pid), 5, "the slow copy's process to be killed")
    status = next(t for t in cell.agent_state(first_machine)["tasks"] if t["task_id"] == name)
    assert status["state"] == "killed", status
