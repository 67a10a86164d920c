"""Client commands start without the heavy modules they do not use (NumPy, pydantic, rich,
matplotlib, httpx and its HTTP stack, the scheduler, the simulator, the master): each runs the CLI's ``main`` in a fresh
interpreter against a small live master and reports which of those ended up in ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corral.master.auth import Tokens
from corral.master.server import MasterServer, build_master

ROOT = Path(__file__).resolve().parents[2]

WRAPPER = """
import json, os, sys
args = json.loads(sys.argv[1])
sys.argv = ["corral", *args]
from corral.cli.main import main
os._exit = sys.exit  # a client command's quick exit (main.leave) comes back here, to report its modules
try:
    main()
    code = 0
except SystemExit as e:
    code = e.code or 0
heavy = ("numpy", "pydantic", "rich", "matplotlib", "yaml", "fastapi", "uvicorn", "trio",
         "httpx", "httpcore", "h11", "anyio", "idna", "sniffio",  # the client has its own wire (http1.py)
         "http", "ssl", "logging", "secrets", "getpass",  # http.client; TLS for https only; the daemons'
         "httptools", "socket")  # the wire itself: for the commands that make a request
ours = ("corral.sched", "corral.sim", "corral.master", "corral.model", "corral.agent", "corral.store")
loaded = sorted(m for m in sys.modules if sys.modules[m] is not None
                and (m.split(".")[0] in heavy or m.startswith(ours)))
print("\\nIMPORTED " + json.dumps({"code": code, "modules": loaded}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("startup")
    srv = MasterServer(build_master("memory://", schedule_interval_s=0.05),
                       Tokens.parse({"t-alice": {"user": "alice"}})).start()
    spec = tmp / "web.yaml"
    spec.write_text(yaml.safe_dump({"name": "web", "tasks": 2, "resources": {"cpu": "1", "memory": "1Gi"}}))
    try:
        yield srv, tmp, spec
    finally:
        srv.stop()


def run(args: list[str], addr: str, tmp: Path) -> tuple[int, str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CORRAL_ADDR": addr, "CORRAL_TOKEN": "t-alice",
           "CORRAL_CONFIG": str(tmp / "none.yaml")}
    result = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(args)], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp)
    report = result.stderr.rsplit("IMPORTED ", 1)
    assert len(report) == 2, result.stderr
    data = json.loads(report[1])
    return data["code"], result.stdout, data["modules"]


# (case, arguments, exit code, what stdout shows, top-level modules (or exact module names) that may be loaded)
WIRE = {"httptools", "socket"}  # what a request needs (corral/client/http1.py)
CASES = [
    ("corral --help lists the commands and loads only rich, for its help", ["--help"], 0, "submit", {"rich"}),
    ("corral jobs --help loads only rich, for its help", ["jobs", "--help"], 0, "--state", {"rich"}),
    ("corral submit reads its spec with PyYAML and nothing heavier", ["submit", "@spec"], 0, "web.alice",
     {"yaml", "corral.model", "corral.model.specfile", *WIRE}),  # the bounded reader: PyYAML and the stdlib only
    ("corral jobs lists the job and loads none of them", ["jobs"], 0, "web.alice", WIRE),
    ("corral status shows the tasks and loads none of them", ["status", "web"], 0, "pending", WIRE),
    ("corral why explains and loads none of them", ["why", "web"], 0, "pending", WIRE),
    ("corral tasks -o wide loads none of them", ["tasks", "-o", "wide"], 0, "RESTARTS", WIRE),
    ("corral events lists the history and loads none of them", ["events", "--job", "web"], 0, "job_submitted", WIRE),
    ("corral --version loads none of them", ["--version"], 0, "corral", {"socket"}),  # importlib.metadata's email
]


@pytest.mark.parametrize("what,args,code,shown,allowed", CASES, ids=[c[0] for c in CASES])
def test_client_commands_import_nothing_heavy(live, what, args, code, shown, allowed):
    srv, tmp, spec = live
    args = [str(spec) if a == "@spec" else a for a in args]
    got, out, modules = run(args, srv.url, tmp)
    assert got == code and shown in out, out
    assert not [m for m in modules if m.split(".")[0] not in allowed and m not in allowed], modules


def test_against_an_unreachable_master_corral_jobs_fails_in_one_line_and_still_loads_nothing_heavy(tmp_path):
    got, out, modules = run(["jobs"], "http://127.0.0.1:9", tmp_path)
    assert got == 1 and {m.split(".")[0] for m in modules} <= WIRE


def test_the_wrapper_sees_heavy_modules_when_a_command_loads_them(tmp_path):
    """The check above can fail: ``corral schema`` loads pydantic, and the wrapper reports it."""
    got, out, modules = run(["schema"], "http://127.0.0.1:9", tmp_path)
    assert got == 0 and "pydantic" in modules and '"properties"' in out


QUICK = [
    ("a listing leaves with its whole output and 0", ["jobs", "-o", "json"], 0, '"web.alice"'),
    ("a refusal leaves with its one line and 2", ["status", "nosuch"], 2, "corral status: job: no job nosuch.alice"),
    ("a bad flag leaves with its one line and 2", ["jobs", "--nope"], 2, "corral jobs: No such option: --nope"),
]


@pytest.mark.parametrize("what,args,code,shown", QUICK, ids=[q[0] for q in QUICK])
def test_the_real_command_leaves_quickly_with_its_output_and_exit_code(live, what, args, code, shown):
    """``python -m corral.cli.main`` as users run it: a client command exits without the
    interpreter's teardown (main.leave), and nothing it printed or its exit code is lost."""
    srv, tmp, spec = live
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CORRAL_ADDR": srv.url, "CORRAL_TOKEN": "t-alice",
           "CORRAL_CONFIG": str(tmp / "none.yaml")}
    result = subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp)
    assert result.returncode == code, result.stderr
    assert shown in (result.stdout if code == 0 else result.stderr)
    if args[:3] == ["jobs", "-o", "json"]:
        assert json.loads(result.stdout)["count"] >= 1  # the whole JSON document came out


def test_leave_exits_as_system_exit_would(monkeypatch, capsys):
    from corral.cli import main as cli_main

    left = []
    monkeypatch.setattr(cli_main.os, "_exit", left.append)
    for code in (None, 0, 2, "a message"):
        cli_main.leave(code)
    assert left == [0, 0, 2, 1] and "a message" in capsys.readouterr().err
