"""Durable job submissions per second over real HTTP against a master this script starts.

The master runs as its own process (``corral master --store sqlite:///...``, fully synced SQLite
with group commit); clients run in separate processes, each keeping ``--concurrency``
submissions in flight over HTTP/1.1 keep-alive connections: a lean load generator on raw
asyncio streams by default (like wrk: the client should not take the master's CPU on a 2-core
machine), or httpx with ``--client httpx``. A submission counts when the master acknowledged it
(HTTP 201), which it does only once the job is durable. The cell has machines, so the scheduler
loop runs beside the submissions.

    python bench/master_submit.py --json
    python bench/master_submit.py --store etcd --json

prints, on its last line, ``{"submissions_per_s", "p50_ms", "p99_ms", "store": "sqlite", ...}``.
With ``--store etcd`` the master's store is a local 3-member etcd cluster (the
replicated master's store; the master is its elected leader) and the same run
measures SQLite beside it: ``submissions_per_s`` is etcd's, ``sqlite_submissions_per_s``
and ``etcd_vs_sqlite`` compare them, ``etcd_cpu_ms_per_submission`` is what the
three etcd members spent. That run keeps 2x16 submissions in flight (both
stores alike) unless ``--concurrency`` says otherwise: a submission is
acknowledged only after a quorum of etcd members wrote it to disk, so at 2x4 in
flight the run measures that round trip (each client waits for it) rather than
how many submissions the master and etcd can make durable per second; with
more in flight each etcd transaction carries more of them (group commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

TOKEN = "bench-token"


def start_master(workdir: Path, store: str | None = None) -> tuple[subprocess.Popen, str]:
    tokens = workdir / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({TOKEN: {"user": "bench", "role": "admin"}}))
    log = open(workdir / "master.log", "w")
    repo = str(Path(__file__).resolve().parents[1])  # this checkout's corral, whatever is installed
    env = {**os.environ, "CORRAL_CONFIG": str(workdir / "config.yaml"),
           "PYTHONPATH": repo + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral.cli.main", "master", "--store", store or f"sqlite:///{workdir}/state.db",
         "--port", "0", "--tokens", str(tokens), "--no-write-config"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.findall(r"serving (http://127\.0\.0\.1:\d+)", (workdir / "master.log").read_text())
        if found and _leads(found[-1]):
            return proc, found[-1]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the master did not start:\n{(workdir / 'master.log').read_text()}")


def _leads(url: str) -> bool:
    """The master answers as the leader (a replicated one is elected first)."""
    try:
        r = httpx.get(url + "/api/v1/master", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
        return r.status_code == 200 and r.json()["role"] == "leader"
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _noop_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"job": "noop"}'})


def _serve_noop(port: int) -> None:
    import uvicorn

    uvicorn.run(_noop_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def spec(worker: int, i: int) -> dict:
    return {"name": f"b{worker}-{i}", "user": "bench", "priority": 2, "tasks": 1,
            "resources": {"cpu": "10m", "memory": "1Mi"}}


async def _client(url: str, worker: int, count: int, concurrency: int, start_at: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url + "/api/v1", limits=limits, headers=headers, timeout=30.0) as client:
        await client.get("/cell")  # connect before the clock starts
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        next_i = 0

        async def one_lane() -> None:
            nonlocal next_i, errors
            while next_i < count:
                i = next_i
                next_i += 1
                t0 = time.perf_counter()
                r = await client.post("/jobs", json=spec(worker, i), headers={"X-Request-Id": f"{worker}-{i}"})
                if r.status_code == 201:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return latencies, errors


async def _raw_client(url: str, worker: int, count: int, concurrency: int, start_at: float) -> tuple[list[float], int]:
    """The same submissions from a lean load generator: HTTP/1.1 keep-alive on raw asyncio
    streams (as wrk does), so that the client's own cost does not crowd the master off this
    2-core machine. Every request is a real POST the master parses, admits and makes durable."""
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    latencies: list[float] = []
    errors = 0
    next_i = 0

    async def one_lane() -> None:
        nonlocal next_i, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.time() < start_at:
                await asyncio.sleep(0.001)
            while next_i < count:
                i = next_i
                next_i += 1
                body = json.dumps(spec(worker, i)).encode()
                head = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                        f"Content-Type: application/json\r\nX-Request-Id: {worker}-{i}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode()
                t0 = time.perf_counter()
                writer.write(head + body)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                if status_line.split()[1:2] == [b"201"]:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return latencies, errors


CLIENTS = {"raw": _raw_client, "httpx": _client}


def client_process(url: str, worker: int, count: int, concurrency: int, start_at: float, out, kind: str = "raw") -> None:
    t0 = time.perf_counter()
    latencies, errors = asyncio.run(CLIENTS[kind](url, worker, count, concurrency, start_at))
    out.put((latencies, errors, time.perf_counter() - t0))


def run_clients(url: str, args: argparse.Namespace) -> tuple[list, float]:
    per_client = args.submissions // args.clients
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 1.0
    workers = [multiprocessing.Process(target=client_process,
                                       args=(url, w, per_client, args.concurrency, start_at, queue, args.client))
               for w in range(args.clients)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=600) for _ in workers]
    elapsed = time.time() - start_at
    for w in workers:
        w.join(30)
    return results, elapsed


def measure_ceiling(args: argparse.Namespace) -> float:
    """Requests/s of the same clients against a do-nothing ASGI app: HTTP and client cost alone."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = multiprocessing.Process(target=_serve_noop, args=(port,), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        results, elapsed = run_clients(f"http://127.0.0.1:{port}", args)
        return round(sum(len(r[0]) for r in results) / elapsed, 1)
    finally:
        server.terminate()
        server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    # Few connections per client: httpx's pool costs grow with its connection count, and on this
    # 2-core machine 2x4 in flight gave the most acknowledged submissions per second (and p99 ~30 ms).
    parser.add_argument("--concurrency", type=int, default=None,
                        help="submissions in flight per client process (default 4; with --store etcd 16, for "
                             "both stores of that run)")
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw",
                        help="load generator: raw HTTP/1.1 keep-alive streams (lean, the default) or httpx")
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--store", choices=("sqlite", "etcd"), default="sqlite",
                        help="the master's store; etcd: a local 3-member cluster, measured beside SQLite")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure the same clients against a no-op ASGI app on uvicorn (this machine's ceiling)")
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = 16 if args.store == "etcd" else 4
    ceiling = measure_ceiling(args) if args.ceiling else None

    result = measure(args, "sqlite" if args.store == "sqlite" else "etcd")
    if args.store == "etcd":
        sqlite = measure(args, "sqlite")
        result["sqlite_submissions_per_s"] = sqlite["submissions_per_s"]
        result["sqlite_server_cpu_ms_per_submission"] = sqlite["server_cpu_ms_per_submission"]
        result["etcd_vs_sqlite"] = round(result["submissions_per_s"] / max(sqlite["submissions_per_s"], 1e-9), 3)
    if ceiling is not None:
        result["noop_ceiling_per_s"] = ceiling
    print(json.dumps(result))


def measure(args: argparse.Namespace, kind: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        workdir = Path(tmp)
        etcd = None
        if kind == "etcd":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's corral
            from corral.store.etcd_cluster import EtcdCluster

            etcd = EtcdCluster(workdir / "etcd").start()
        try:
            proc, url = start_master(workdir, etcd.url + "/bench" if etcd else None)
            try:
                headers = {"Authorization": f"Bearer {TOKEN}"}
                for m in range(args.machines):
                    httpx.post(url + "/api/v1/machines", headers=headers, timeout=10,
                               json={"name": f"m{m}", "capacity": {"cpu": "64", "memory": "256Gi"},
                                     "attributes": {"rack": f"r{m % 4}"}}).raise_for_status()
                members = [p.pid for p in etcd.procs.values()] if etcd else []
                cpu_before, etcd_before = cpu_seconds(proc.pid), sum(cpu_seconds(p) for p in members)
                results, elapsed = run_clients(url, args)
                server_cpu = cpu_seconds(proc.pid) - cpu_before
                etcd_cpu = sum(cpu_seconds(p) for p in members) - etcd_before
                cell = httpx.get(url + "/api/v1/cell", headers=headers, timeout=10).json()
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        finally:
            if etcd is not None:
                etcd.stop()
        latencies = sorted(x for r in results for x in r[0])
        errors = sum(r[1] for r in results)
        acked = len(latencies)
        result = {
            "submissions_per_s": round(acked / elapsed, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 2) if latencies else None,
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2) if latencies else None,
            "store": kind,
            "acknowledged": acked,
            "errors": errors,
            "clients": args.clients * args.concurrency,
            "client": args.client,
            "seconds": round(elapsed, 2),
            # placed tasks (no agent runs them here, so they stay "starting")
            "tasks_running": sum(cell["tasks"].get(w, 0) for w in ("starting", "running", "restarting")),
            # Master CPU per acknowledged submission (all its threads): what one core could sustain
            # when the clients and other programs do not compete for it.
            "server_cpu_ms_per_submission": round(1000 * server_cpu / max(acked, 1), 3),
            "load_average_1m": os.getloadavg()[0],
        }
        if etcd is not None:  # the three members together
            result["etcd_cpu_ms_per_submission"] = round(1000 * etcd_cpu / max(acked, 1), 3)
        if not args.json:
            print(f"{kind}: {acked} durable submissions in {elapsed:.2f}s over HTTP "
                  f"({args.clients}x{args.concurrency} clients)")
        return result


if __name__ == "__main__":
    main()
