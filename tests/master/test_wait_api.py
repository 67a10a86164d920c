"""GET /api/v1/machines/{machine}/wait: the wait-time matrix, typed; 404 for an unknown machine."""

from __future__ import annotations

from corral.master.errors import AdmissionError
from corral.master.wait_api import machine_wait

from tests.master.helpers import Harness
from tests.master.test_api import AGENT_BODY, ALICE, OPS

GIB = 2**30


def test_an_empty_machine_waits_nothing_for_what_fits_and_never_for_what_does_not(client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()  # 8 cpu, 16 GiB
    got = client.get("/machines/m1/wait", headers=ALICE)
    assert got.status_code == 200
    body = got.json()
    assert body["machine"] == "m1"
    assert body["cpu_buckets"] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert body["memory_buckets"] == [GIB, 4 * GIB, 16 * GIB, 64 * GIB]
    assert body["wait_s"] == [[0.0, 0.0, 0.0, None]] * 4 + [[None] * 4]
    missing = client.get("/machines/nowhere/wait", headers=ALICE)
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "machine"


def test_a_running_task_with_an_estimate_makes_the_shapes_that_need_its_room_wait_its_time_left():
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("a", cpu="3", memory="1Gi", expected_runtime=100)
    h.schedule()
    h.clock.advance(30)
    rows = machine_wait(h.state, h.clock, "m1").wait_s
    assert rows[0] == [0.0, 0.0, None, None]  # 1 core fits beside a now (up to 7 GiB free)
    assert rows[1] == [70.0, 70.0, None, None]  # 2 cores: after a ends
    assert rows[3] == [None] * 4  # 8 cores: more than the machine
    try:
        machine_wait(h.state, h.clock, "nowhere")
    except AdmissionError as e:
        assert e.status == 404
    else:
        raise AssertionError("an unknown machine must be refused")
