"""``corral up --tls``: the cell's CA, HTTPS between CLI, master and agents, agents that present
certificates naming their machine, and a master that accepts them for that machine only."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest

from corral.client.errors import ApiError
from corral.client.transport import Transport
from corral.cli.up import LocalCell
from corral.tls import TlsFiles, issue


def test_a_tls_cell_runs_tasks_and_binds_each_agent_certificate_to_its_machine(tmp_path):
    cell = LocalCell(tmp_path / "cell", agents=1, port=0, poll_interval_s=0.3, capacity="cpu=2,memory=2Gi",
                     echo=lambda *_: None, tls=True)
    try:
        cell.start()
        assert cell.url.startswith("https://") and cell.machines_up()[0]["address"].startswith("https://")
        cell.api("POST", "/jobs", json={"name": "safe", "command": "sh", "args": ["-c", "exec sleep 60"],
                                        "resources": {"cpu": "100m", "memory": "16Mi"}})
        deadline = time.monotonic() + 30
        while cell.api("GET", "/jobs/safe." + cell.user + "/tasks")["tasks"][0]["state"] != "running":
            assert time.monotonic() < deadline, "the task did not run over TLS"
            time.sleep(0.2)

        ca = cell.dir / "ca"
        m1 = TlsFiles(ca / "m1.pem", ca / "m1-key.pem", ca / "ca.pem").client_context()
        token = cell.agent_tokens["m1"]
        body = {"name": "m2", "address": "https://127.0.0.1:1", "capacity": {"cpu": "1", "memory": "1Gi"}}
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(verify=m1) as c:  # m1's token and certificate cannot speak for m2
            r = c.post(cell.url + "/api/v1/agents/register", json=body, headers=auth)
            assert r.status_code == 403 and "bound to machine m1, not m2" in r.text
        # A token m1 may use, with another machine's certificate: the certificate is checked too.
        m9 = issue(ca, "m9").client_context()
        with httpx.Client(verify=m9) as c:
            r = c.post(cell.url + "/api/v1/agents/register", json={**body, "name": "m1"}, headers=auth)
            assert r.status_code == 403 and "names machine 'm9', not 'm1'" in r.text
        # m1's name on a certificate that is not an agent's (a master's): not an agent's registration.
        elsewhere = tmp_path / "ca-copy"
        elsewhere.mkdir()
        for f in ("ca.pem", "ca-key.pem"):
            (elsewhere / f).write_bytes((ca / f).read_bytes())
        as_master = issue(elsewhere, "m1", role="master").client_context()
        with httpx.Client(verify=as_master) as c:
            r = c.post(cell.url + "/api/v1/agents/register", json={**body, "name": "m1"}, headers=auth)
            assert r.status_code == 403 and "role 'master', not 'agent'" in r.text
        # The agent answers masters' client certificates only: m9's, an agent's, is refused.
        agent_url = cell.machines_up()[0]["address"]
        with httpx.Client(verify=m9) as c:
            r = c.get(agent_url + "/v1/state", headers=auth)
            assert r.status_code == 403 and "expected a master's client certificate" in r.text
        master = TlsFiles(ca / "master.pem", ca / "master-key.pem", ca / "ca.pem").client_context("agent")
        with httpx.Client(verify=master) as c:
            assert c.get(agent_url + "/v1/state", headers=auth).json()["machine"] == "m1"
        with httpx.Client(verify=m1) as c:
            r = c.post(cell.url + "/api/v1/agents/m2/notify", json={"incarnation": "x", "seq": 1, "tasks": []},
                       headers=auth)
            assert r.status_code == 403
        only_ca = ssl.create_default_context(cafile=str(ca / "ca.pem"))
        with httpx.Client(verify=only_ca) as c:  # an agent token without a certificate is not enough
            r = c.post(cell.url + "/api/v1/agents/register", json={**body, "name": "m1"}, headers=auth)
            assert r.status_code == 403 and "client certificate" in r.text
            with pytest.raises(httpx.HTTPError):  # the agent serves the cell's certificates only
                c.get(cell.machines_up()[0]["address"] + "/v1/state", headers=auth)
        with Transport(cell.url, cell.admin_token, timeout_s=5.0, failover_s=1.0) as plain:
            with pytest.raises(ApiError, match="certificate"):  # the CLI verifies the master
                plain.call("GET", "/jobs")
        with Transport(agent_url, cell.admin_token, timeout_s=5.0, failover_s=1.0, ca=str(ca / "ca.pem")) as cli:
            with pytest.raises(ApiError, match="not a master's"):  # ... and that it is a master
                cli.call("GET", "/jobs")
    finally:
        cell.stop()


def test_a_ca_is_made_once_and_certificates_name_what_they_are_for(tmp_path):
    from cryptography import x509

    from corral.tls import TlsError, common_name, init_ca

    init_ca(tmp_path)
    with pytest.raises(TlsError, match="already holds a CA"):
        init_ca(tmp_path)
    files = issue(tmp_path, "m7", ["127.0.0.2", "node7.example"])
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert cert.subject.rfc4514_string() == "OU=agent,CN=m7"  # an agent's unless --role says otherwise
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["127.0.0.2", "node7.example"]
    assert oct(files.key.stat().st_mode & 0o777) == "0o600"
    assert common_name({"subject": ((("commonName", "m7"),),)}) == "m7" and common_name({}) is None
    with pytest.raises(TlsError, match="corral ca init"):
        issue(tmp_path / "none", "x")


def test_tls_flags_go_together_and_name_missing_files(tmp_path):
    from typer.testing import CliRunner

    from corral.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["master", "--store", "memory://", "--tls-cert", str(tmp_path / "c.pem")])
    assert r.exit_code == 2 and "go together" in r.stderr
    r = runner.invoke(app, ["master", "--store", "memory://", "--tls-cert", "a", "--tls-key", "b", "--tls-ca", "c"])
    assert r.exit_code == 2 and "--tls-cert: no file a" in r.stderr
    r = runner.invoke(app, ["ca", "init", str(tmp_path / "ca")])
    assert r.exit_code == 0 and (tmp_path / "ca" / "ca.pem").exists()
    r = runner.invoke(app, ["ca", "init", str(tmp_path / "ca")])
    assert r.exit_code == 2 and "already holds a CA" in r.stderr
    r = runner.invoke(app, ["ca", "issue", str(tmp_path / "ca"), "master0", "--role", "master"])
    assert r.exit_code == 0 and "(master master0)" in r.stdout and (tmp_path / "ca" / "master0.pem").exists()
    r = runner.invoke(app, ["ca", "issue", str(tmp_path / "ca"), "x", "--role", "admin"])
    assert r.exit_code == 2 and "role: expected one of master, agent, etcd" in r.stderr


@pytest.mark.slow
def test_a_replicated_tls_cell_fails_over_and_keeps_its_task(tmp_path):
    import os
    import signal

    from corral.cli.up_replicated import ReplicatedCell
    from tests.etcd import skip_without_etcd

    skip_without_etcd()
    cell = ReplicatedCell(tmp_path / "cell", replicas=3, agents=1, port=0, poll_interval_s=0.3,
                          capacity="cpu=2,memory=2Gi", echo=lambda *_: None, tls=True)
    try:
        cell.start(60)
        rows = cell.masters_now()
        assert all(r["url"].startswith("https://") for r in rows)
        # etcd speaks TLS to the masters and to its peers, and wants a certificate of the cell's CA
        from corral.store import StoreError
        from corral.store.etcd import EtcdStore

        assert cell.etcd.scheme == "https" and all(cell.etcd.healthy(n) for n in cell.etcd.names)
        args = cell.etcd._args("etcd0")
        assert "--client-cert-auth" in args and "--peer-client-cert-auth" in args
        with pytest.raises(StoreError, match="unreachable"):
            EtcdStore(cell.etcd.endpoints, "/corral/", retry_s=0.5)
        assert sorted(r["role"] for r in rows) == ["follower", "follower", "leader"]
        cell.api("POST", "/jobs", json={"name": "x", "command": "sh", "args": ["-c", "exec sleep 60"],
                                        "resources": {"cpu": "100m", "memory": "16Mi"}})
        tasks = f"/jobs/x.{cell.user}/tasks"
        deadline = time.monotonic() + 30
        while cell.api("GET", tasks)["tasks"][0]["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(next(r["pid"] for r in rows if r["role"] == "leader"), signal.SIGKILL)
        reply = cell.api("POST", "/jobs", json={"name": "y", "resources": {"cpu": "100m", "memory": "16Mi"}},
                         headers={"X-Request-Id": "y1"}, retries=3)
        assert reply["job"] == f"y.{cell.user}"
        time.sleep(1.0)
        assert cell.api("GET", tasks)["tasks"][0]["state"] == "running" and cell.supervise() is None
    finally:
        cell.stop()
