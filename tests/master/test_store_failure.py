"""A store that fails and recovers, under a live master over real HTTP: a real SQLite file that
runs out of room (a full tmpfs where this machine lets a test mount one, else SQLite's own
``max_page_count`` limit, which fails writes with the same SQLITE_FULL), then gets it back.

Writes answer 503 with the first failure's reason in the master's error shape, the log says so
once (no traceback per round), reads go on, and once the store works again the master writes what
it missed and takes writes again by itself, with nothing lost: a master restarted on the file
finds every job.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from corral.master.auth import Tokens
from corral.master.server import MasterServer, build_master
from corral.store.base import StoreError
from corral.store.sqlite import SqliteStore

from .conftest import TOKENS, auth

PAD = "x" * 40_000  # a job big enough to need new pages in the database


def spec(name: str) -> dict:
    return {"name": name, "command": "sleep", "args": ["1"], "env": {"PAD": PAD},
            "resources": {"cpu": "100m", "memory": "32Mi"}}


class PageLimit:
    """Room for nothing more: SQLite refuses to grow the database past its current size."""

    def __init__(self, directory: Path):
        self.path = directory / "state.db"

    def fill(self, master) -> None:
        conn = master.store._conn
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count={pages}")

    def free(self, master) -> None:
        master.store._conn.execute("PRAGMA max_page_count=1073741823")

    def close(self) -> None:
        pass


class FullTmpfs:
    """A 16 MiB tmpfs holding the database, filled to the last byte by a filler file."""

    def __init__(self, directory: Path):
        self.mount = directory / f"fs-{uuid.uuid4().hex[:6]}"
        self.mount.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(self.mount)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        self.path = self.mount / "state.db"
        self.filler = self.mount / "filler"

    def fill(self, master) -> None:
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:  # ENOSPC: full
                pass

    def free(self, master) -> None:
        self.filler.unlink()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], capture_output=True)


@pytest.fixture(params=["page-limit", "full-tmpfs"])
def disk(request, tmp_path):
    d = PageLimit(tmp_path) if request.param == "page-limit" else FullTmpfs(tmp_path)
    yield d
    d.close()


def serve(path: Path) -> MasterServer:
    master = build_master(f"sqlite:///{path}", validate=True, schedule_interval_s=0.05)
    master.store_health.probe_interval_s = 0.2
    return MasterServer(master, Tokens.parse(TOKENS)).start()


def test_a_full_store_answers_503_with_its_reason_logs_once_and_recovers_on_its_own(disk, caplog):
    caplog.set_level(logging.INFO)
    srv = serve(disk.path)
    try:
        c = httpx.Client(base_url=srv.url + "/api/v1", headers=auth("t-ops"), timeout=10.0)
        assert c.post("/jobs", json=spec("before")).status_code == 201
        disk.fill(srv.master)
        r = c.post("/jobs", json=spec("during"), headers={"X-Request-Id": "during-1"})
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "unavailable" and body["errors"][0]["field"] == "master"
        assert "database or disk is full" in body["errors"][0]["message"], body
        for method, path, kw in (("POST", "/jobs", {"json": spec("later")}), ("DELETE", "/jobs/before", {})):
            r = c.request(method, path, **kw)
            assert r.status_code == 503, r.text
            assert "database or disk is full" in r.json()["errors"][0]["message"]
            assert "writes resume on their own" in r.json()["errors"][0]["message"]
        assert c.get("/jobs/before").status_code == 200  # reads go on
        assert httpx.get(srv.url + "/healthz").json() == {"ok": False}
        time.sleep(1.0)  # several scheduling rounds, ticks and probes while failing
        failing = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.getMessage() for r in failing if r.name == "corral.master.store_health"] == [
            "the store failed; writes answer 503 until it works again (tried every 0.2s): "
            "store commit failed: database or disk is full"]
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        assert len(failing) == 1, [r.getMessage() for r in failing]

        disk.free(srv.master)
        deadline = time.monotonic() + 10
        while (r := c.post("/jobs", json=spec("after"))).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.status_code == 201, r.text  # no restart
        assert httpx.get(srv.url + "/healthz").json() == {"ok": True}
        back = [r.getMessage() for r in caplog.records if r.name == "corral.master.store_health"]
        assert len(back) == 2 and back[1].startswith("the store works again after "), back
        # The 503'd submission was written once the store worked: a retry learns it took effect.
        again = c.post("/jobs", json=spec("during"), headers={"X-Request-Id": "during-1"})
        assert again.status_code == 200 and again.json()["duplicate"], again.text
        jobs = {j["name"] for j in c.get("/jobs").json()["jobs"]}
        assert jobs == {"before", "during", "after"}
    finally:
        srv.stop()
    # Durable: a master started again on the file has all of it.
    srv = serve(disk.path)
    try:
        c = httpx.Client(base_url=srv.url + "/api/v1", headers=auth("t-ops"), timeout=10.0)
        assert {j["name"] for j in c.get("/jobs").json()["jobs"]} == {"before", "during", "after"}
    finally:
        srv.stop()


def test_after_a_failed_append_the_sqlite_store_writes_nothing_past_the_hole(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    try:
        ev = lambda seq: {"seq": seq, "type": "x", "pad": PAD}  # noqa: E731
        store.append([ev(1)]).result(5)
        (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
        store._conn.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(StoreError, match="database or disk is full"):
            store.append([ev(2), ev(3)]).result(5)
        store._conn.execute("PRAGMA max_page_count=1073741823")
        # The store works again, but event 4 may not be durable before 2 and 3.
        with pytest.raises(StoreError, match="event 2 is not durable yet .database or disk is full"):
            store.append([ev(4)]).result(5)
        assert store.append([ev(2), ev(3), ev(4)]).result(5) == 4
        assert store.append([ev(5)]).result(5) == 5
        assert [e["seq"] for e in store.read_since(0)] == [1, 2, 3, 4, 5]
    finally:
        store.close()
    assert os.path.exists(tmp_path / "s.db")
