"""``corral master --policy`` and ``--config FILE``, ``corral up --policy``, and build_master's policy."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from corral.cli.cellconfig import CellConfigError, load_cell_config
from corral.cli.main import app
from corral.master.server import build_master
from corral.sched.policy import PolicyError

runner = CliRunner()


def write(tmp_path, text):
    path = tmp_path / "cell.yaml"
    path.write_text(text)
    return path


def test_a_full_file_maps_to_the_masters_parameters_with_paths_beside_it(tmp_path):
    path = write(tmp_path, yaml.safe_dump({
        "cell": "prod-a", "listen": "127.0.0.1:7200", "store": "sqlite://state/m.db", "tokens": "tokens.yaml",
        "quota": "/etc/corral/quota.yaml", "policy": "best-fit=1,spread=0.5", "poll_interval": 0.5,
        "misses-to-down": 4, "reschedule-rate": 10, "validate": True, "write-config": False, "verbose": True}))
    assert load_cell_config(path) == {
        "cell": "prod-a", "host": "127.0.0.1", "port": 7200, "store": f"sqlite:///{tmp_path / 'state/m.db'}",
        "tokens": str(tmp_path / "tokens.yaml"), "quota": "/etc/corral/quota.yaml",
        "policy": "best-fit=1,spread=0.5", "poll_interval": 0.5, "misses_to_down": 4, "reschedule_rate": 10.0,
        "validate": True, "write_config": False, "verbose": True}


def test_an_empty_file_sets_nothing(tmp_path):
    assert load_cell_config(write(tmp_path, "")) == {}


BAD = [
    ("an unknown key names the closest known one", "polcy: hybrid\n", "unknown key 'polcy'; did you mean policy?"),
    ("an unknown key with no close one lists the known ones", "colour: red\n", "known keys: cell, listen"),
    ("a port that is not a number", "port: http\n", "port: expected a port number 0..65535, got 'http'"),
    ("a listen address without a port", "listen: localhost\n", "listen: expected HOST:PORT"),
    ("listen together with port", "listen: 127.0.0.1:1\nport: 2\n", "listen and host/port both given"),
    ("a poll interval that is not positive", "poll-interval: 0\n", "poll-interval: expected a number > 0"),
    ("a flag that is not true or false", "validate: maybe\n", "validate: expected true or false"),
    ("a file that is a list", "- policy\n", "expected a mapping of settings"),
    ("a file that is not YAML", "policy: [unclosed\n", "is not valid YAML"),
]


@pytest.mark.parametrize("what,text,expected", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(tmp_path, what, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(CellConfigError) as e:
        load_cell_config(path)
    assert expected in str(e.value) and str(path) in str(e.value)
    result = runner.invoke(app, ["master", "--config", str(path)])
    assert result.exit_code == 2 and expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


CLI = [
    ("a bad --policy names the known policies",
     ["master", "--policy", "fastest", "--store", "memory://"], "--policy: unknown policy 'fastest': expected one of"),
    ("a bad policy in the file names the file",
     ["master", "--config", "@file"], "cell.yaml: policy: unknown policy 'nosuch'"),
    ("a --policy flag overrides the file's bad one (the store, also from the file, is what fails next)",
     ["master", "--config", "@file", "--policy", "best-fit"], "expected a store URL"),
    ("a --store flag overrides the file's",
     ["master", "--config", "@file", "--policy", "random", "--store", "postgres://y"], "'postgres://y'"),
    ("a bad --listen says what it expected",
     ["master", "--listen", "nohost", "--store", "memory://"], "--listen: expected HOST:PORT"),
    ("a bad --advertise says what it expected",
     ["master", "--advertise", "ftp://x", "--store", "memory://"], "--advertise: expected a URL"),
    ("a bad etcd endpoint names it",
     ["master", "--store", "etcd://127.0.0.1"], "expected etcd endpoints"),
    ("corral agent checks its --listen",
     ["agent", "--master", "http://127.0.0.1:1", "--name", "m", "--token", "t", "--listen", "x"],
     "corral agent: expected HOST:PORT"),
    ("corral up checks its --policy before starting anything",
     ["up", "--policy", "fastest", "--dir", "@dir"], "corral up: --policy: unknown policy 'fastest'"),
]


@pytest.mark.parametrize("what,args,expected", CLI, ids=[c[0] for c in CLI])
def test_policy_and_config_errors_are_one_line_and_exit_2(tmp_path, what, args, expected):
    path = write(tmp_path, yaml.safe_dump({"policy": "nosuch", "store": "mysql://x", "tokens": "t.yaml"}))
    args = [str(path) if a == "@file" else str(tmp_path / "cell") if a == "@dir" else a for a in args]
    result = runner.invoke(app, args, env={"CORRAL_CONFIG": str(tmp_path / "cli.yaml")})
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "cell").exists()


def test_build_master_schedules_with_the_policy_it_is_given():
    master = build_master("memory://", policy="best-fit=1,spread=0.5")
    assert master.core.scheduler.config.policy == "best-fit=1,spread=0.5"
    assert build_master("memory://").core.scheduler.config.policy == "hybrid"


def test_build_master_refuses_a_bad_policy():
    with pytest.raises(PolicyError):
        build_master("memory://", policy="fastest")


def test_the_file_sets_the_queue_order_and_the_shares(tmp_path):
    from corral.sched.shares import Group

    path = write(tmp_path, yaml.safe_dump({"queue-order": "round-robin", "shares": {
        "users": {"alice": 2}, "groups": {"research": {"weight": 3, "users": ["alice", "carol"]}}}}))
    settings = load_cell_config(path)
    assert settings["queue_order"] == "round-robin"
    assert settings["shares"].weights == {"alice": 2.0}
    assert settings["shares"].groups == {"research": Group(3.0, ("alice", "carol"))}
    master = build_master("memory://", queue_order=settings["queue_order"], shares=settings["shares"])
    assert master.core.scheduler.user_order.name == "round-robin"
    assert master.core.scheduler.shares.weight("alice") == 2.0
    assert build_master("memory://").core.scheduler.user_order.name == "drf"


SHARES_BAD = [
    ("an unknown queue order names the known ones", "queue-order: fifo\n",
     "queue-order: expected one of drf, round-robin, got 'fifo'"),
    ("a weight that is not positive names the user", "shares: {users: {alice: -1}}\n",
     "shares: users.alice: expected a weight > 0, got -1"),
    ("a group without users", "shares: {groups: {research: {weight: 2}}}\n",
     "shares: groups.research.users: expected a non-empty list"),
]


@pytest.mark.parametrize("what,text,expected", SHARES_BAD, ids=[b[0] for b in SHARES_BAD])
def test_bad_shares_in_the_file_are_one_line_naming_the_key(tmp_path, what, text, expected):
    path = write(tmp_path, text)
    result = runner.invoke(app, ["master", "--config", str(path)])
    assert result.exit_code == 2 and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_queue_order_flag_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["master", "--queue-order", "fifo", "--store", "memory://"],
                           env={"CORRAL_CONFIG": str(tmp_path / "cli.yaml")})
    assert result.exit_code == 2 and "--queue-order: expected one of drf, round-robin" in result.stderr


def test_reclamation_is_a_cell_option_that_build_master_hands_to_the_scheduler(tmp_path):
    assert load_cell_config(write(tmp_path, "reclamation: false\n")) == {"reclamation": False}
    with pytest.raises(CellConfigError, match="reclamation: expected true or false"):
        load_cell_config(write(tmp_path, "reclamation: off-ish\n"))
    for setting, want in ((None, True), (False, False), (True, True)):
        master = build_master("memory://", reclamation=setting)
        try:
            assert master.core.scheduler.config.reclamation is want
        finally:
            master.store.close()


def test_the_speculation_budget_is_a_cell_option_that_build_master_hands_to_the_core(tmp_path):
    assert load_cell_config(write(tmp_path, "speculation-budget: 5\nspeculation-per-job: 1\n")) == {
        "speculation_budget": 5, "speculation_per_job": 1}
    with pytest.raises(CellConfigError, match="speculation-budget"):
        load_cell_config(write(tmp_path, "speculation-budget: lots\n"))
    from corral.sched.speculation import SpeculationConfig

    master = build_master("memory://", speculation=SpeculationConfig(per_cell=5, per_job=1))
    try:
        assert (master.core.speculation.per_cell, master.core.speculation.per_job) == (5, 1)
    finally:
        master.store.close()
    result = runner.invoke(app, ["master", "--speculation-budget", "-1"])
    assert result.exit_code == 2
