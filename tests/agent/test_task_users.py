"""Tasks run as their job user's own unprivileged uid (``run_as="per-user"``): a task cannot read
another user's files, signal another user's processes, nor read the agent's state or a secret of
the master's; its working directory is its own and is removed after it ends."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from corral.agent import supervisor as sv
from corral.agent.launch import parse_launch
from corral.agent.runner import Runner
from corral.agent.taskuser import HASHED_BASE, TaskUserError, TaskUsers, hashed_identity
from tests.agent.conftest import pid_alive, wait_until

root_only = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                               reason="changing a task's uid needs root and setpriv (util-linux)")


def launch(task_id, user, script, **fields):
    return sv.Launch(parse_launch({"task_id": task_id, "user": user, "command": "sh", "args": ["-c", script],
                                   **fields}))


@pytest.fixture
def state_dir():
    # not under pytest's tmp_path: its parents are 0700 root, which no task uid could pass through
    path = Path(tempfile.mkdtemp(prefix="corral-task-users-"))
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@root_only
def test_two_users_tasks_cannot_read_or_signal_each_other_nor_read_the_agents_secrets(state_dir, isolation):
    secret = state_dir / "tokens.yaml"  # a file of the master's: created 0600 like the real one
    secret.write_text("s3cr3t: {user: ops, role: admin}\n")
    os.chmod(secret, 0o600)
    runner = Runner(state_dir / "agent", isolation, kill_grace_s=1.0, tick_s=0.02, validate=True,
                    run_as="per-user").start()
    try:
        runner.submit(launch("0.a.alice.c", "alice", "echo alice-private > mine; id -u; pwd; sleep 60"))
        alice = wait_until(lambda: runner.status("0.a.alice.c")["state"] == "running" and runner.status("0.a.alice.c"),
                           10, "alice's task to run")
        out = wait_until(lambda: len(runner.logs("0.a.alice.c", "stdout", 10).split()) >= 2 and
                         runner.logs("0.a.alice.c", "stdout", 10).split(), 10, "alice's task to say who it is")
        alice_uid, alice_dir = int(out[0]), out[1]
        assert alice_uid == hashed_identity("alice").uid and alice_uid >= HASHED_BASE
        assert stat.S_IMODE(os.stat(alice_dir).st_mode) == 0o700 and os.stat(alice_dir).st_uid == alice_uid
        alice_log = runner.tasks_dir / "0.a.alice.c" / "stdout.log"
        probes = " ; ".join(f"{cmd} 2>/dev/null; echo {name}=$?" for name, cmd in (
            ("read_file", f"cat {alice_dir}/mine"), ("list_dir", f"ls {alice_dir}"),
            ("signal", f"kill -0 {alice['pid']}"), ("read_log", f"cat {alice_log}"),
            ("list_state", f"ls {runner.tasks_dir}"), ("read_token", f"cat {secret}"),
            ("write_own", "touch here")))
        runner.submit(launch("0.b.bob.c", "bob", f"id -u; {probes}"))
        wait_until(lambda: runner.status("0.b.bob.c")["state"] in ("finished", "failed"), 10, "bob's probes")
        lines = runner.logs("0.b.bob.c", "stdout", 20).split()
        print("bob saw:", lines)
        results = dict(line.split("=") for line in lines[1:])
        assert int(lines[0]) == hashed_identity("bob").uid != alice_uid
        assert results == {"read_file": "1", "list_dir": "2", "signal": "1", "read_log": "1", "list_state": "2",
                           "read_token": "1", "write_own": "0"}, results
        assert pid_alive(alice["pid"])  # bob's kill reached nobody
        assert "alice-private" not in runner.logs("0.b.bob.c", "stdout", 20)
    finally:
        runner.close()
    assert not os.path.exists(alice_dir)  # each working directory goes with its task


def test_the_agent_mode_changes_nobody_and_a_shared_uid_is_refused_not_shared():
    assert TaskUsers("agent").identity("alice") is None
    with pytest.raises(TaskUserError, match="expected one of agent, per-user"):
        TaskUsers("root")
    if shutil.which("setpriv"):
        users = TaskUsers("per-user")
        assert users.identity("alice") == users.identity("alice") != users.identity("bob")
        users._owner[hashed_identity("carol").uid] = "mallory"  # as if mallory had hashed to carol's uid
        with pytest.raises(TaskUserError, match="users mallory and carol map to the same uid"):
            users.identity("carol")
