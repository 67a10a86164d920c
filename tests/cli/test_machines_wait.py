"""``corral machines --wait``: each machine's wait-time matrix, as a table and as JSON."""

from __future__ import annotations

import json

from corral.master.commands import RegisterMachine

from tests.cli.test_client import corral, master  # noqa: F401 (the fixture)


def test_machines_wait_prints_the_matrix_per_machine(master):  # noqa: F811
    master.master.execute(RegisterMachine("m1", {"cpu": "8", "memory": "16Gi"}))
    code, out, _ = corral("machines", "--wait", "-o", "json")
    assert code == 0
    (m1,) = json.loads(out)["machines"]
    assert m1["machine"] == "m1" and m1["wait_s"][0] == [0.0, 0.0, 0.0, None]
    code, out, _ = corral("machines", "--wait")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("m1: expected wait")
    assert lines[-1].split()[0] == "16" and lines[-1].split()[1:] == ["never"] * 4  # 16 cores: more than m1
