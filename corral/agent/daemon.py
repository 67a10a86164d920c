"""One agent process: isolation + runner + HTTP API + registration + notifier, started and stopped together.

``Agent(config).start()`` detects the isolation, starts the runner, binds
``config.host:config.port`` (port 0 picks a free one; ``agent.address`` says
which), serves the API with uvicorn on a thread and starts registering with
the master in the background. ``stop()`` undoes all of it: the API stops,
every task is killed, every cgroup it made is removed. ``run(config)`` is the
foreground version for the ``corral agent`` command (SIGINT/SIGTERM stop it).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from corral.agent.changes import ReportSequence, delta_of
from corral.agent.config import AgentConfig
from corral.agent.colocation import ColocationConfig
from corral.agent.eviction import MemoryReading, system_reading
from corral.agent.isolation import Isolation, detect
from corral.agent.notifier import HttpSender, Notifier
from corral.agent.reclaimed import ReclaimedCpu
from corral.agent.registration import Registrar
from corral.agent.runner import Runner
from corral.agent.server import create_app
from corral.agent.state import full_state

log = logging.getLogger(__name__)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        pressure_source: Callable[[], MemoryReading] = system_reading,
        clock: Callable[[], float] = time.time,
        isolation: Isolation | None = None,
        validate: bool = False,
        notify: bool = True,
    ):
        self.config = config
        gpus = int(config.capacity.get("gpu", 0))
        self.isolation = isolation if isolation is not None else detect(config.cgroup_root, config.isolation,
                                                                        devices=gpus > 0)
        self.incarnation = time.time_ns() // 1000
        self.runner = Runner(
            config.state_dir, self.isolation, clock=clock, kill_grace_s=config.kill_grace_s,
            tick_s=config.tick_s, usage_interval_s=config.usage_interval_s,
            memory_pressure_threshold=config.memory_pressure_threshold, pressure_source=pressure_source,
            log_max_bytes=config.log_max_bytes, log_keep=config.log_keep, validate=validate, run_as=config.run_as,
            task_user=config.task_user, gpus=gpus,
            colocation=(ColocationConfig(capacity_milli=config.capacity["cpu"])
                        if config.colocation and config.capacity.get("cpu", 0) > 0 else None),
            colocation_interval_s=config.colocation_interval_s,
            capacity=dict(config.capacity) or None,
        )
        # Task changes reach the master as they happen; its polls stay the authority (notifier.py).
        self.notifier: Notifier | None = None
        if notify:
            self._sender = HttpSender(config.master, config.name, config.token,
                                      verify=config.tls.client_context("master") if config.tls else True)
            self.notifier = Notifier(self._sender, self.incarnation, seed=config.name)
            self.runner.on_status = self.notifier.offer
        # The CPU of tasks placed in reclaimed room, as the master allows it (PUT /v1/reclaimed).
        self.reclaimed = ReclaimedCpu(self.runner)
        self.runner.tick_hooks.append(self.reclaimed.apply)
        self.changes = ReportSequence()  # numbers task changes for the polls' deltas (changes.py)
        self._state_lock = threading.Lock()
        self.polls = 0  # the master's polls answered (for /metrics)
        self.app = create_app(self)
        self._last_poll = 0.0
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.registrar: Registrar | None = None

    # ------------------------------------------------------------ what the API and registration read

    @property
    def port(self) -> int:
        assert self._socket is not None, "start() first"
        return self._socket.getsockname()[1]

    @property
    def address(self) -> str:
        if self.config.advertise:
            return self.config.advertise.rstrip("/")
        return f"{'https' if self.config.tls else 'http'}://{self.config.host}:{self.port}"

    def note_poll(self) -> None:
        self._last_poll = time.monotonic()
        self.polls += 1

    def last_poll(self) -> float:
        return self._last_poll

    def state(self, since: int | None = None, incarnation: str | None = None) -> dict[str, Any]:
        """The full state, or (``since`` the seq of an answer of this ``incarnation``) what changed after it."""
        with self._state_lock:  # one answer's statuses and its seq belong together
            statuses = self.runner.statuses()
            self.changes.observe(statuses)
            state = full_state(
                self.config.name, self.isolation.name, self.incarnation, self.config.capacity,
                statuses, self.runner.last_reading, self.config.memory_pressure_threshold,
            )
            return delta_of(state, self.changes, since, incarnation)

    def registration_body(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "address": self.address,
            "capacity": dict(self.config.capacity),
            "gpu_model": self.config.gpu_model,
            "attributes": dict(self.config.attributes),
            "isolation": self.isolation.name,
        }

    # ------------------------------------------------------------ life cycle

    def start(self, ready_timeout_s: float = 10.0) -> "Agent":
        if self.notifier is not None:
            self.notifier.start()
        self.runner.start()
        try:
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on TCP sockets, and without it every
            # answer waits out the client's 40 ms delayed ACK.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.config.host, self.config.port))
            sock.listen(128)
            self._socket = sock
            tls = self.config.tls.server_config(require_client_cert=True) if self.config.tls else {}
            config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False, **tls)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                            name="corral-agent-http", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + ready_timeout_s
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the agent's HTTP server did not start on {self.config.host}:{self.config.port}")
                time.sleep(0.01)
        except BaseException:
            self.stop()
            raise
        self.registrar = Registrar(
            self.config.master, self.config.token, self.registration_body, self.last_poll,
            backoff_s=self.config.register_backoff_s, backoff_max_s=self.config.register_backoff_max_s,
            seed=self.config.name, verify=self.config.tls.client_context("master") if self.config.tls else True,
        )
        self.registrar.start()
        log.info("agent %s serving on %s with %s", self.config.name, self.address, self.isolation.describe())
        log.info("agent %s: %s", self.config.name, self.runner.users.describe())
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.registrar is not None:
            self.registrar.stop(timeout_s)
        if self.notifier is not None:
            # Before the runner kills the tasks: a stopping agent's kills are not news the master
            # should act on before it notices the agent is gone (missed polls, or a new incarnation).
            self.notifier.stop(timeout_s)
            self.runner.on_status = None
            self._sender.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._socket is not None:
            self._socket.close()
        self.runner.close(timeout_s)

    def __enter__(self) -> "Agent":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(config: AgentConfig) -> None:
    """Run an agent in the foreground until SIGINT or SIGTERM; then kill its tasks and clean up."""
    done = threading.Event()

    def _exit(signum: int, frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, _exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    agent = Agent(config)
    try:
        agent.start()
        print(f"corral agent {config.name}: serving {agent.address} with {agent.isolation.describe()}; "
              f"master {config.master}", flush=True)
        while not done.wait(1.0):
            pass
    finally:
        agent.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
