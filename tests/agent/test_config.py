"""Agent settings from the command line: capacity, attributes, and the ``corral agent`` command."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from corral.agent.config import AgentConfig, ConfigError, detect_capacity, parse_attributes, parse_capacity
from corral.agent.isolation import limits_for
from corral.agent.launch import parse_launch
from corral.cli.agent import register


@pytest.mark.parametrize(
    "case, text, want",
    [
        ("cores and binary memory units are read into corral units", "cpu=8,memory=16Gi",
         {"cpu": 8000, "memory": 16 * 2**30}),
        ("millicores, disk and gpus are read too", "cpu=500m,disk=1Ti,gpu=2",
         {"cpu": 500, "disk": 2**40, "gpu": 2}),
    ],
)
def test_parse_capacity(case, text, want):
    capacity = parse_capacity(text)
    assert set(capacity) == {"cpu", "memory", "disk", "gpu"}
    for key, value in want.items():
        assert capacity[key] == value


@pytest.mark.parametrize(
    "case, text, field",
    [
        ("memory in parsecs names capacity.memory", "memory=12 parsecs", "capacity.memory"),
        ("an unknown dimension is named", "cpu=1,bogons=3", "capacity.bogons"),
        ("a pair without '=' is refused", "cpu", "capacity"),
    ],
)
def test_bad_capacity_names_the_field(case, text, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_capacity(text)


def test_detected_capacity_is_positive_and_in_corral_units():
    capacity = detect_capacity()
    assert capacity["cpu"] >= 1000 and capacity["cpu"] % 1000 == 0
    assert capacity["memory"] > 2**26


def test_attributes_and_config_validation(tmp_path):
    assert parse_attributes("rack=r1, power=p2") == {"rack": "r1", "power": "p2"}
    with pytest.raises(ConfigError, match="token"):
        AgentConfig(name="m1", master="http://127.0.0.1:1", token="", state_dir=tmp_path)
    with pytest.raises(ConfigError, match="master"):
        AgentConfig(name="m1", master="127.0.0.1:1", token="t", state_dir=tmp_path)
    config = AgentConfig(name="m1", master="http://127.0.0.1:1", token="t", state_dir=tmp_path)
    assert config.cgroup_root == "corral-m1" and config.capacity["cpu"] > 0


def test_memory_limit_and_cpu_weight_come_from_the_task():
    def lim(**fields):
        return limits_for(parse_launch({"task_id": "t", "command": "x", **fields}))

    ls = lim(resources={"cpu": 2000, "memory": "1Gi"}, appclass="latency-sensitive")
    batch = lim(resources={"cpu": 2000, "memory": "1Gi"}, appclass="batch")
    assert ls.memory_bytes == 2**30 and ls.cpu_quota_us == 200_000
    assert ls.cpu_shares == 10 * batch.cpu_shares and ls.cpu_weight == 10 * batch.cpu_weight
    assert lim().cpu_quota_us is None and lim().memory_bytes == 0


def test_the_agent_command_reports_a_bad_capacity_and_exits_2(tmp_path):
    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command so that typer keeps "agent" as a subcommand
        pass

    result = CliRunner().invoke(app, ["agent", "--master", "http://127.0.0.1:1", "--name", "m1",
                                      "--token", "t", "--capacity", "memory=12 parsecs",
                                      "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "capacity.memory" in result.output
