"""Hollow agents: the agent's own API and state code, with tasks that only pretend to run.

A hollow agent is a real :class:`corral.agent.daemon.Agent` — the same FastAPI app
(``server.create_app``), the same ``Runner`` and ``Supervisor``, the same registration and
full-state report — except that its runner is handed :class:`HollowProcesses` instead of real
processes: no fork, no cgroup, no log files. A task "runs" for as long as its command says and
exits 0 (see :func:`run_time`); SIGTERM or SIGKILL ends it at once, as it ends ``sleep``.

:class:`HollowHost` runs many hollow agents in one process, so a scale test can give one real
master thousands of machines: every agent listens on its own port of 127.0.0.1 (the master
polls each at its own address over real HTTP), but one uvicorn server serves all the ports and
routes each request to its agent's app by the port it came in on; one timeline thread carries
out every fake exit, one ticker thread ticks every runner. ``kill(name)`` makes one agent vanish
from the network (its port stops accepting, its open connections are reset), as a crashed
machine would.

    python -m corral.agent.hollow --master http://127.0.0.1:7100 --token TOKEN --agents 500

prints ``ready N`` once all N agents serve, then reads commands on stdin: ``kill NAME`` (answers
``killed NAME``), ``stats`` (answers one JSON line, see ``HollowHost.stats``) and ``quit``. Everything binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import logging
import math
import os
import re
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from corral.agent import supervisor as sv
from corral.agent.config import AgentConfig, parse_capacity
from corral.agent.daemon import Agent
from corral.agent.eviction import MemoryReading
from corral.agent.isolation import Isolation
from corral.agent.reclaimed import ReclaimedCpu
from corral.agent.registration import Registrar
from corral.agent.runner import Runner

log = logging.getLogger(__name__)

HOLLOW = "hollow"
FIRST_PID = 10_000_000  # above any kernel pid_max: a fake pid is never a real process
NO_PRESSURE = MemoryReading(64 * 2**30, 60 * 2**30)
_SLEEP = re.compile(r"(?:^|[;&|\s])(?:exec\s+)?sleep\s+([0-9.]+|inf(?:inity)?)\b")
_EXIT = re.compile(r"(?:^|[;&|\s])exit\s+(\d+)\s*$")


def run_time(command: str, args: list[str]) -> tuple[float, int]:
    """How long a task of ``command args`` runs and its exit code, as a hollow agent plays it.

    ``sleep X`` -> (X, 0); ``true`` -> (0, 0); ``false`` -> (0, 1); ``sh -c SCRIPT`` -> the sum of
    the script's ``sleep X`` and the code of a final ``exit N``; anything else -> (0, 0).
    """
    name = os.path.basename(command)
    if name == "sleep":
        try:
            return max(0.0, float(args[0])), 0
        except (IndexError, ValueError):
            return 0.0, 1  # sleep: missing operand
    if name == "true":
        return 0.0, 0
    if name == "false":
        return 0.0, 1
    if name in ("sh", "bash", "dash") and len(args) >= 2 and args[0] == "-c":
        script = args[1]
        seconds = sum(math.inf if s.startswith("inf") else float(s) for s in _SLEEP.findall(script)
                      if s.replace(".", "", 1).isdigit() or s.startswith("inf"))
        end = _EXIT.search(script)
        return seconds, int(end.group(1)) if end else 0
    return 0.0, 0


class Timeline:
    """One thread that calls functions at given wall-clock times (a heap; ties in call order)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="corral-hollow-timeline", daemon=True)

    def start(self) -> "Timeline":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def at(self, when: float, fn: Callable[[], None]) -> None:
        if math.isinf(when):
            return  # never
        with self._cv:
            heapq.heappush(self._heap, (when, next(self._seq), fn))
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._heap or self._heap[0][0] > self.clock()):
                    self._cv.wait(min(1.0, self._heap[0][0] - self.clock()) if self._heap else 1.0)
                if self._stop:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # one bad callback must not stop every other agent's exits
                log.exception("hollow timeline callback failed")


class HollowProcesses:
    """A runner's :class:`~corral.agent.runner.ProcessBackend` where nothing runs: a task is a fake
    pid and an exit due on the timeline. ``attach(runner.submit)`` before use."""

    _pids = itertools.count(FIRST_PID)
    _pids_lock = threading.Lock()

    def __init__(self, timeline: Timeline, clock: Callable[[], float] = time.time):
        self.timeline, self.clock = timeline, clock
        self.live: dict[tuple[str, int], int] = {}  # (task, attempt) -> fake pid
        self._lock = threading.Lock()
        self._submit: Callable[..., None] | None = None

    def attach(self, submit: Callable[..., None]) -> None:
        self._submit = submit

    def alive(self, pid: int | None) -> bool:
        with self._lock:
            return pid is not None and pid in self.live.values()

    def spawn(self, ins: sv.Spawn) -> sv.Event:
        seconds, code = run_time(ins.launch.command, list(ins.launch.args))
        with self._pids_lock:
            pid = next(self._pids)
        key = (ins.task_id, ins.attempt)
        with self._lock:
            self.live[key] = pid
        self.timeline.at(self.clock() + seconds, lambda: self._exit(key, code))
        return sv.Started(ins.task_id, ins.attempt, pid)

    def signal(self, task_id: str, attempt: int, signal_name: str) -> None:
        code = -(signal.SIGTERM if signal_name == "TERM" else signal.SIGKILL)
        key = (task_id, attempt)
        if key in self.live:
            # Later, from the timeline: the runner is in the middle of handling an event now.
            self.timeline.at(self.clock(), lambda: self._exit(key, code))

    def _exit(self, key: tuple[str, int], code: int) -> None:
        with self._lock:
            if self.live.pop(key, None) is None:
                return  # it already ended (a kill and its natural end raced)
        assert self._submit is not None, "attach(runner.submit) first"
        self._submit(sv.Exited(key[0], key[1], code))


class HollowIsolation(Isolation):
    """No sandbox at all; the name tells the master (and people) that this machine is hollow."""

    name = HOLLOW

    def preexec(self, box):  # never called: nothing is forked
        raise RuntimeError("a hollow agent forks nothing")

    def describe(self) -> str:
        return "hollow (no processes, no control groups)"


class HollowAgent(Agent):
    """An :class:`Agent` whose runner plays its tasks on a :class:`Timeline`. Started, served and
    stopped by a :class:`HollowHost`, never on its own."""

    def __init__(self, config: AgentConfig, timeline: Timeline, clock: Callable[[], float] = time.time,
                 validate: bool = False):
        super().__init__(config, pressure_source=lambda: NO_PRESSURE, clock=clock, isolation=HollowIsolation(),
                         validate=validate)
        self.processes = HollowProcesses(timeline, clock)
        # The same runner as the real agent's, with the hollow backend. (Agent builds a runner of
        # real processes first; it is never started, so it holds nothing.)
        self.runner = Runner(
            config.state_dir, self.isolation, clock=clock, kill_grace_s=config.kill_grace_s, tick_s=config.tick_s,
            usage_interval_s=config.usage_interval_s, memory_pressure_threshold=config.memory_pressure_threshold,
            pressure_source=lambda: NO_PRESSURE, log_max_bytes=config.log_max_bytes, log_keep=config.log_keep,
            validate=validate, processes=self.processes, run_as="agent",  # fake processes: nobody to run as
        )
        self.processes.attach(self.runner.submit)
        self.reclaimed = ReclaimedCpu(self.runner)  # hollow sandboxes have no quota to lower
        if self.notifier is not None:  # the same pushes of task changes as the real agent's
            self.runner.on_status = self.notifier.offer
        self.killed = False
        self._port = 0
        self.polls = 0
        self.periods: list[float] = []  # seconds between the master's polls, since the host's last stats()

    def note_poll(self) -> None:
        last = self.last_poll()
        super().note_poll()  # counts it in self.polls
        if last:
            self.periods.append(self.last_poll() - last)

    @property
    def port(self) -> int:
        # Bound by the host; kept here because a killed agent's socket is closed.
        assert self._port, "the host binds the port at start()"
        return self._port

    def start(self, ready_timeout_s: float = 10.0) -> "HollowAgent":
        raise RuntimeError("a hollow agent is started by its HollowHost")

    def register(self) -> None:
        self.registrar = Registrar(
            self.config.master, self.config.token, self.registration_body, self.last_poll,
            backoff_s=self.config.register_backoff_s, backoff_max_s=self.config.register_backoff_max_s,
            seed=self.config.name,
        )
        self.registrar.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.registrar is not None:
            self.registrar.stop(timeout_s)
        self.runner.close(timeout_s)


class HollowHost:
    """Many hollow agents in this process: one port each, one uvicorn server for all of them.

    ``add(config)`` before ``start()``; ``start()`` binds every agent's port, serves, starts the
    timeline and the ticker and (with ``register=True``) every agent's registration; ``stop()``
    undoes all of it. ``kill(name)`` takes one agent off the network for good.
    """

    def __init__(self, tick_s: float = 0.1, usage_interval_s: float = 1.0, clock: Callable[[], float] = time.time,
                 validate: bool = False):
        self.tick_s, self.usage_interval_s, self.clock, self.validate = tick_s, usage_interval_s, clock, validate
        self.timeline = Timeline(clock)
        self.agents: dict[str, HollowAgent] = {}
        self._by_port: dict[int, HollowAgent] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, config: AgentConfig) -> HollowAgent:
        if config.name in self.agents:
            raise ValueError(f"name: a hollow agent named {config.name!r} is already here")
        agent = HollowAgent(config, self.timeline, self.clock, self.validate)
        self.agents[config.name] = agent
        return agent

    # ---- serving -------------------------------------------------------------------------------

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Route a request to the app of the agent whose port it came in on."""
        port = (scope.get("server") or ("", 0))[1]
        agent = self._by_port.get(port)
        if agent is None or agent.killed:
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b""})
            return
        await agent.app(scope, receive, send)

    def start(self, register: bool = True, ready_timeout_s: float = 30.0, stagger_s: float = 0.0) -> "HollowHost":
        sockets = []
        try:
            for agent in self.agents.values():
                # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on TCP sockets, and without it every
                # answer waits out the client's 40 ms delayed ACK.
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((agent.config.host, agent.config.port))
                sock.listen(1024)
                agent._socket, agent._port = sock, sock.getsockname()[1]
                sockets.append(sock)
                self._by_port[agent._port] = agent
            self.timeline.start()
            config = uvicorn.Config(self._dispatch, interface="asgi3", log_level="warning", lifespan="off",
                                    access_log=False, proxy_headers=False, server_header=False,
                                    timeout_keep_alive=30, backlog=1024)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._serve, args=(sockets,), name="corral-hollow-http",
                                            daemon=True)
            self._thread.start()
            deadline = time.monotonic() + ready_timeout_s
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the hollow agents' HTTP server did not start")
                time.sleep(0.01)
            self._ticker = threading.Thread(target=self._tick_loop, name="corral-hollow-ticker", daemon=True)
            self._ticker.start()
        except BaseException:
            self.stop()
            raise
        if register:
            for agent in self.agents.values():
                agent.register()
                if stagger_s:
                    time.sleep(stagger_s)
        return self

    def _serve(self, sockets: list[socket.socket]) -> None:
        assert self._server is not None
        self._loop = asyncio.new_event_loop()  # kept: kill() closes ports from inside it
        try:
            self._loop.run_until_complete(self._server.serve(sockets=sockets))
        finally:
            self._loop.close()

    def _tick_loop(self) -> None:
        """What each real runner's ticker does, for every hollow runner from one thread."""
        next_usage = 0.0
        while not self._stop.wait(self.tick_s):
            usage = time.monotonic() >= next_usage
            if usage:
                next_usage = time.monotonic() + self.usage_interval_s
            for agent in list(self.agents.values()):
                try:
                    agent.runner.submit(sv.Tick())
                    if usage:
                        agent.runner.sample_usage()
                        agent.runner.check_pressure()
                except Exception:  # keep ticking the others
                    log.exception("hollow agent %s: tick failed", agent.config.name)

    def stats(self) -> dict[str, Any]:
        """Polls so far, the periods between polls since the last call (and forgets them), tasks
        running, and this process's CPU seconds."""
        periods: list[float] = []
        for agent in self.agents.values():
            if agent.killed:
                continue
            taken, agent.periods = agent.periods, []
            periods.extend(taken)
        periods.sort()

        def q(f: float) -> float | None:
            return round(periods[min(len(periods) - 1, int(f * len(periods)))], 4) if periods else None

        cpu = os.times()
        return {"agents": len(self.agents), "polls": sum(a.polls for a in self.agents.values()),
                "periods": len(periods), "period_mean_s": round(sum(periods) / len(periods), 4) if periods else None,
                "period_p50_s": q(0.5), "period_p99_s": q(0.99), "period_max_s": q(1.0),
                "running": sum(len(a.processes.live) for a in self.agents.values()),
                "cpu_s": round(cpu.user + cpu.system, 3)}

    def kill(self, name: str) -> None:
        """Agent ``name`` vanishes: its port stops accepting and its open connections are reset.
        Its registration stops too (a dead machine does not call back)."""
        agent = self.agents[name]
        agent.killed = True
        if agent.registrar is not None:
            agent.registrar._stop.set()
        server, loop = self._server, self._loop
        if server is None or loop is None or loop.is_closed() or agent._socket is None:
            return
        port = agent.port
        done = threading.Event()

        def close() -> None:
            for s in getattr(server, "servers", []):
                if any(ls.fileno() >= 0 and ls.getsockname()[1] == port for ls in (s.sockets or ())):
                    s.close()
            for conn in list(server.server_state.connections):
                transport = getattr(conn, "transport", None)
                sockname = transport.get_extra_info("sockname") if transport is not None else None
                if sockname and sockname[1] == port:
                    transport.abort()
            done.set()

        loop.call_soon_threadsafe(close)
        done.wait(5.0)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for agent in self.agents.values():
            if agent.registrar is not None:
                agent.registrar._stop.set()
        for agent in self.agents.values():
            agent.stop(timeout_s)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._ticker is not None:
            self._ticker.join(timeout_s)
        self.timeline.stop(timeout_s)
        for agent in self.agents.values():
            if agent._socket is not None:
                agent._socket.close()

    def __enter__(self) -> "HollowHost":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- the helper process ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corral.agent.hollow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--master", required=True, help="the master's URL, e.g. http://127.0.0.1:7100")
    parser.add_argument("--token", default=os.environ.get("CORRAL_AGENT_TOKEN", ""), help="the agents' token")
    parser.add_argument("--agents", type=int, default=10, help="how many hollow agents")
    parser.add_argument("--prefix", default="h", help="agent names: PREFIX0, PREFIX1, ...")
    parser.add_argument("--first", type=int, default=0, help="the number of the first agent")
    parser.add_argument("--capacity", default="cpu=32,memory=128Gi,disk=0,gpu=0")
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between the runners' ticks")
    parser.add_argument("--stagger", type=float, default=0.002, help="seconds between registrations")
    parser.add_argument("--state-dir", default="", help="default: a temporary directory, removed at exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.agents < 1:
        parser.error(f"--agents: expected an integer >= 1, got {args.agents}")
    capacity = parse_capacity(args.capacity)
    own_dir = not args.state_dir
    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="corral-hollow-"))
    host = HollowHost(tick_s=args.tick, usage_interval_s=max(1.0, args.tick))
    for i in range(args.first, args.first + args.agents):
        name = f"{args.prefix}{i}"
        host.add(AgentConfig(name=name, master=args.master, token=args.token, state_dir=state_dir / name,
                             capacity=capacity, attributes={"rack": f"r{i // 40}", "hollow": "1"},
                             kill_grace_s=1.0, tick_s=args.tick, usage_interval_s=max(1.0, args.tick)))
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        host.start(stagger_s=args.stagger)
        print(f"ready {len(host.agents)}", flush=True)

        def commands() -> None:
            for line in sys.stdin:
                words = shlex.split(line)
                if words[:1] == ["kill"] and len(words) == 2 and words[1] in host.agents:
                    host.kill(words[1])
                    print(f"killed {words[1]}", flush=True)
                elif words == ["stats"]:
                    print(json.dumps(host.stats()), flush=True)
                elif words[:1] == ["quit"]:
                    break
                elif words:
                    print(f"error: expected 'kill NAME', 'stats' or 'quit', got {line.strip()!r}", flush=True)
            done.set()

        threading.Thread(target=commands, name="corral-hollow-stdin", daemon=True).start()
        done.wait()
    finally:
        host.stop()
        if own_dir:
            import shutil

            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
