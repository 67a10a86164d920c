"""``corral masters``: a row per master address, a master that does not answer says so."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from corral.cli.main import app
from corral.store.etcd_cluster import free_port

runner = CliRunner()


def test_masters_lists_each_address_and_marks_the_unreachable_and_exits_1_without_a_leader(tmp_path):
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    env = {"CORRAL_ADDR": ",".join(dead), "CORRAL_TOKEN": "t", "CORRAL_CONFIG": str(tmp_path / "c.yaml")}
    result = runner.invoke(app, ["masters", "--output", "json"], env=env)
    rows = json.loads(result.stdout)["masters"]
    assert [r["url"] for r in rows] == dead and {r["role"] for r in rows} == {"unreachable"}
    assert all("connection refused" in r["error"] for r in rows)
    text = runner.invoke(app, ["masters"], env=env)
    assert text.exit_code == 1 and text.stdout.splitlines()[0].split() == ["URL", "ROLE", "PID", "APPLIED"]
    bad = runner.invoke(app, ["masters", "--output", "yaml"], env=env)
    assert bad.exit_code == 2 and "--output: expected text or json" in bad.stderr


def test_the_master_answers_who_it_is(tmp_path):
    from corral.master.auth import Tokens
    from corral.master.server import MasterServer, build_master

    import httpx

    with MasterServer(build_master("memory://"), Tokens.parse({"t": {"user": "u", "role": "user"}})) as srv:
        reply = httpx.get(srv.url + "/api/v1/master", headers={"Authorization": "Bearer t"}).json()
    assert reply["role"] == "leader" and reply["url"] == srv.url and reply["applied"] == 0 and reply["pid"] > 0
