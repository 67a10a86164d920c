"""The leader cut off from etcd by the network: a real leader master in a network namespace whose
only route to etcd is dropped stops acknowledging within its lease, a follower outside takes
over, and at no time do two masters acknowledge writes. Skips where namespaces cannot be made."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.test_replicated_master import ADMIN, AGENT, job
from tests.etcd import skip_without_etcd
from tests.master.procs import MasterProcess, child_env
from tests.netns import CutNamespace

HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def role(url: str) -> str | None:
    try:
        return httpx.get(url + "/api/v1/master", headers=HEADERS, timeout=1.0).json()["role"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_inside(ns: CutNamespace, store: str, tokens: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    """``corral master`` inside ``ns``, serving on its address there; (process, URL)."""
    log_path = workdir / "master.log"
    with open(log_path, "a") as log:
        proc = subprocess.Popen([*ns.prefix(), sys.executable, "-m", "corral.cli.main", "master", "--store", store,
                                 "--listen", f"{ns.addr}:0", "--tokens", str(tokens), "--no-write-config"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
                                env=child_env(CORRAL_CONFIG=str(workdir / "config.yaml")))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.findall(r"serving (http://[0-9.]+:\d+)", log_path.read_text())
        if found and role(found[-1]) == "leader":
            return proc, found[-1]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"the master in the namespace did not lead: {log_path.read_text()[-2000:]}")


@pytest.mark.slow
def test_a_leader_whose_route_to_etcd_is_cut_stops_acknowledging_and_a_follower_takes_over(tmp_path):
    from corral.store.etcd_cluster import EtcdCluster

    skip_without_etcd()
    ns = CutNamespace().create()
    etcd_dir = tempfile.mkdtemp(prefix="corral-etcd-")
    cluster = inside = None
    outside: MasterProcess | None = None
    try:
        # etcd on loopback for the masters outside, and on the address the namespace can lose
        cluster = EtcdCluster(etcd_dir, also_listen=(ns.far,)).start(timeout_s=30.0)
        tokens = tmp_path / "tokens.yaml"
        tokens.write_text(yaml.safe_dump({ADMIN: {"user": "ops", "role": "admin"},
                                          AGENT: {"user": "agents", "role": "agent", "machine": "*"}}))
        far = ",".join(f"{ns.far}:{cluster.client_ports[n]}" for n in cluster.names)
        for d in ("a", "b"):
            (tmp_path / d).mkdir()
        inside, a_url = start_inside(ns, f"etcd://{far}/cut", tokens, tmp_path / "a")
        outside = MasterProcess(cluster.url + "/cut", tokens, tmp_path / "b").start()
        b_url = outside.url
        assert role(b_url) == "follower"

        acks: list[tuple[float, str, str]] = []  # (when acknowledged, master, job)
        halt = threading.Event()

        def stream(url: str, who: str) -> None:
            with httpx.Client(headers=HEADERS, timeout=3.0) as client:
                while not halt.is_set():
                    name = f"{who}{uuid.uuid4().hex[:8]}"
                    try:
                        r = client.post(url + "/api/v1/jobs", json=job(name), headers={"X-Request-Id": name})
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 201:
                        acks.append((time.monotonic(), who, r.json()["job"]))
                    else:
                        time.sleep(0.02)  # 307 from a follower, 503 from a deposed or cut-off leader

        threads = [threading.Thread(target=stream, args=(u, w), daemon=True)
                   for u, w in ((a_url, "a"), (b_url, "b"))]
        for t in threads:
            t.start()
        wait(lambda: sum(1 for _, who, _ in acks if who == "a") >= 10, 20,
             "the leader in the namespace to acknowledge")
        ns.cut()  # the leader's only route to etcd is gone; the test still reaches it
        cut_at = time.monotonic()
        wait(lambda: role(b_url) == "leader", 15, "the follower outside to take over")
        took_over = time.monotonic() - cut_at
        wait(lambda: any(who == "b" for _, who, _ in acks), 10, "the new leader to acknowledge")
        time.sleep(1.0)  # the cut-off one keeps being asked meanwhile
        halt.set()
        for t in threads:
            t.join(10)

        last_a = max(t for t, who, _ in acks if who == "a")
        first_b = min(t for t, who, _ in acks if who == "b")
        assert last_a < first_b, "two masters acknowledged writes at once"
        assert last_a - cut_at < 1.0, f"the cut-off leader acknowledged {last_a - cut_at:.2f} s after the cut"
        assert took_over < 5.0, f"the follower took {took_over:.2f} s to take over"
        assert role(a_url) in (None, "deposed", "follower")  # it knows it no longer leads (or exited)
        listed = httpx.get(b_url + "/api/v1/jobs", params={"limit": 100_000}, headers=HEADERS, timeout=10).json()
        jobs = {j["job"] for j in listed["jobs"]}
        missing = {j for _, _, j in acks} - jobs
        assert not missing, f"acknowledged jobs lost: {sorted(missing)[:5]}"
    finally:
        if inside is not None and inside.poll() is None:
            inside.kill()
            inside.wait(10)
        if outside is not None:
            outside.kill()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(etcd_dir, ignore_errors=True)
        ns.delete()
        assert not ns.exists(), "the namespace or its veth pair was left behind"
