"""Tasks never run as root by default: under an agent that is root (``run_as="auto"``, the
default) each job user's tasks run as their own unprivileged uid, so a task cannot read another
user's files or logs, signal another user's processes, nor read the agent's state or the master's
tokens file and store; its working directory is its own and is removed after it ends. A launch
naming no user runs as the cell's ``corral-task`` account, created when missing."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from corral.agent import supervisor as sv
from corral.agent.launch import parse_launch
from corral.agent.runner import Runner
from corral.agent.taskuser import (HASHED_BASE, TASK_USER, TaskUserError, TaskUsers, hashed_identity, passable,
                                   resolve_run_as)
from corral.cli.up import ensure_cell_tokens
from corral.store.sqlite import SqliteStore
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
    # the master's files, made by the code that makes them for a cell: tokens (0600) and the store
    admin_token, _ = ensure_cell_tokens(state_dir / "master" / "tokens.yaml", "ops", ["m1"])
    store = SqliteStore(state_dir / "master" / "state.db")
    store.close()
    os.chmod(state_dir / "master", 0o755)  # even with its directory open to all, the files are not
    secret, db = state_dir / "master" / "tokens.yaml", state_dir / "master" / "state.db"
    runner = Runner(state_dir / "agent", isolation, kill_grace_s=1.0, tick_s=0.02, validate=True).start()
    assert runner.users.run_as == "per-user"  # the default for an agent that is root
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
            ("read_store", f"cat {db}"), ("signal_agent", f"kill -0 {os.getpid()}"),
            ("write_own", "touch here")))
        runner.submit(launch("0.b.bob.c", "bob", f"id -u; {probes}"))
        wait_until(lambda: runner.status("0.b.bob.c")["state"] in ("finished", "failed"), 10, "bob's probes")
        lines = runner.logs("0.b.bob.c", "stdout", 20).split()
        print("bob saw:", lines)
        results = dict(line.split("=") for line in lines[1:])
        assert int(lines[0]) == hashed_identity("bob").uid != alice_uid
        assert results == {"read_file": "1", "list_dir": "2", "signal": "1", "read_log": "1", "list_state": "2",
                           "read_token": "1", "read_store": "1", "signal_agent": "1", "write_own": "0"}, results
        assert pid_alive(alice["pid"])  # bob's kill reached nobody
        assert "alice-private" not in runner.logs("0.b.bob.c", "stdout", 20)
        assert admin_token not in runner.logs("0.b.bob.c", "stdout", 20)
    finally:
        runner.close()
    assert not os.path.exists(alice_dir)  # each working directory goes with its task


def test_the_agent_mode_changes_nobody_and_a_shared_uid_is_refused_not_shared():
    assert TaskUsers("agent").identity("alice") is None
    with pytest.raises(TaskUserError, match="expected one of auto, agent, per-user, shared"):
        TaskUsers("root")
    if shutil.which("setpriv"):
        users = TaskUsers("per-user")
        assert users.identity("alice") == users.identity("alice") != users.identity("bob")
        users._owner[hashed_identity("carol").uid] = "mallory"  # as if mallory had hashed to carol's uid
        with pytest.raises(TaskUserError, match="users mallory and carol map to the same uid"):
            users.identity("carol")


def test_auto_is_per_user_for_a_root_agent_and_the_agents_own_user_otherwise():
    assert resolve_run_as("auto", euid=0) == "per-user"
    assert resolve_run_as("auto", euid=1000) == "agent"
    assert resolve_run_as("shared", euid=0) == "shared"
    if os.geteuid() != 0:
        users = TaskUsers()
        assert users.identity("alice") is None
        assert "cannot change users" in users.describe()


@root_only
def test_a_launch_naming_no_user_runs_as_the_cells_task_account_which_is_created_when_missing(state_dir, isolation):
    runner = Runner(state_dir / "agent", isolation, kill_grace_s=1.0, tick_s=0.02, validate=True).start()
    try:
        runner.submit(launch("anon", "", "id -un; id -u"))
        wait_until(lambda: runner.status("anon")["state"] in ("finished", "failed"), 10, "the task to finish")
        name, uid = runner.logs("anon", "stdout", 5).split()[:2]
    finally:
        runner.close()
    account = pwd.getpwnam(TASK_USER)  # the agent made it (useradd --system) if it was missing
    assert (name, int(uid)) == (TASK_USER, account.pw_uid) and account.pw_uid != 0


@root_only
def test_shared_runs_every_users_task_as_the_task_account_never_root(state_dir, isolation):
    runner = Runner(state_dir / "agent", isolation, kill_grace_s=1.0, tick_s=0.02, validate=True,
                    run_as="shared").start()
    try:
        for user in ("alice", "bob"):
            runner.submit(launch(f"t-{user}", user, "id -u"))
        wait_until(lambda: all(runner.status(f"t-{u}")["state"] == "finished" for u in ("alice", "bob")), 10,
                   "both tasks")
        uids = {int(runner.logs(f"t-{u}", "stdout", 5).split()[0]) for u in ("alice", "bob")}
    finally:
        runner.close()
    assert uids == {pwd.getpwnam(TASK_USER).pw_uid}


@root_only
def test_a_state_dir_under_a_private_parent_puts_the_working_directories_where_a_task_can_reach_them(tmp_path,
                                                                                                     isolation):
    assert not passable(tmp_path)  # pytest's tmp_path is under a 0700 directory of root's
    runner = Runner(tmp_path / "agent", isolation, kill_grace_s=1.0, tick_s=0.02, validate=True).start()
    try:
        work_root = runner.work_root
        assert passable(work_root) and not str(work_root).startswith(str(tmp_path))
        runner.submit(launch("home", "alice", 'cd "$HOME" && touch reachable && echo ok'))
        wait_until(lambda: runner.status("home")["state"] in ("finished", "failed"), 10, "the task to finish")
        assert runner.logs("home", "stdout", 5).strip() == "ok", runner.logs("home", "stderr", 5)
    finally:
        runner.close()
    assert not work_root.exists()  # made for this agent, removed with it


def test_the_agents_settings_name_a_bad_run_as_or_task_user(tmp_path):
    from corral.agent.config import AgentConfig, ConfigError

    base = dict(name="m1", master="http://127.0.0.1:1", token="t", state_dir=tmp_path, capacity={"cpu": 1000})
    assert AgentConfig(**base).run_as == "auto"  # the default: never root when the agent is
    with pytest.raises(ConfigError, match="run_as: expected one of auto, agent, per-user, shared, got 'root'"):
        AgentConfig(**base, run_as="root")
    with pytest.raises(ConfigError, match="task_user: expected a system account name"):
        AgentConfig(**base, task_user="Not A Name")


@root_only
def test_the_startup_line_says_who_tasks_run_as():
    assert "their job user's unprivileged uid" in TaskUsers().describe()
    assert "tasks run as root" in TaskUsers("agent").describe()
