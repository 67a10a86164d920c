"""A cell's configuration file: what ``corral master --config FILE`` reads.

A YAML mapping whose keys mirror ``corral master``'s flags (``--poll-interval``
is ``poll-interval`` or ``poll_interval``)::

    cell: prod-a
    listen: 127.0.0.1:7100        # or host: and port:
    store: sqlite://state/master.db
    tokens: tokens.yaml
    quota: quota.yaml
    policy: best-fit=1,spread=0.5  # as corral sim --policy
    queue-order: drf               # inside a priority band: drf (default) or round-robin
    reclamation: true              # non-production work in reclaimed room (default); false: limits only
    rebalance:                     # the rebalancer (docs/rebalancer.md; file only); off by default
      enabled: true
      interval_s: 60               # between passes
      max_moves: 8                 # per pass
      drain_timeout_s: 60          # a start-first move's old copy waits this long for the new one
    shares:                        # DRF weights (default 1) and groups (file only)
      users: {alice: 2}
      groups:
        research: {weight: 2, users: [alice, carol]}
    poll-interval: 1.0
    misses-to-down: 3
    reschedule-rate: 20
    speculation-budget: 20  # stragglers' extra copies running at once in the cell (0: none)
    speculation-per-job: 2  # ... and per job
    machine-queues: false     # Apollo's machine queues for batch work (corral/master/queue_placement.py)
    machine-queue-length: 4
    validate: false
    write-config: true
    verbose: false
    log-format: json        # or text
    log-level: info         # debug, info, warning, error
    schedulers:             # scheduler profiles (file only; corral/master/README.md)
      - {name: service, policy: hybrid, bands: [production, monitoring]}
      - {name: batch, policy: best-fit, appclasses: [batch], external: true}

Relative paths (``tokens``, ``quota``, a ``sqlite://REL/PATH`` store) are
relative to the file's folder, so a cell's files can sit together. A flag
given on the command line overrides the file. An unknown key, a value of the
wrong type, or a file that is not a mapping is one line (:class:`CellConfigError`)
naming the file, the key and what was expected; an unknown key's line names
the closest known key.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any


class CellConfigError(ValueError):
    pass


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"expected a port number 0..65535, got {value!r}")
    return value


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"expected a number > 0, got {value!r}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected an integer >= 1, got {value!r}")
    return value


def _choice(key: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check
def _order(value: Any) -> str:
    from corral.sched.queue import USER_ORDERS

    if value not in USER_ORDERS:
        raise ValueError(f"expected one of {', '.join(USER_ORDERS)}, got {value!r}")
    return value


def _shares(value: Any) -> Any:
    from corral.sched.shares import ShareConfig, SharesError

    try:
        return ShareConfig.parse(value)
    except SharesError as e:
        raise ValueError(str(e).removeprefix("shares: ").removeprefix("shares.")) from None


def _schedulers(value: Any) -> Any:
    from corral.master.profiles import ProfileError, Profiles

    try:
        return Profiles.parse(value)
    except ProfileError as e:
        raise ValueError(str(e)) from None


def _rebalance(value: Any) -> Any:
    from dataclasses import fields

    from corral.sched.rebalance.planner import RebalanceConfig

    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping (enabled, interval_s, max_moves, free_room, defragment, drain_timeout_s), got {value!r}")
    known = {f.name: f.type for f in fields(RebalanceConfig)}
    args: dict[str, Any] = {}
    for raw, item in value.items():
        key = str(raw).replace("-", "_")
        if key not in known:
            raise ValueError(f"unknown key {raw!r}; expected one of {', '.join(known)}")
        if key in ("enabled", "free_room", "defragment"):
            if not isinstance(item, bool):
                raise ValueError(f"{key}: expected true or false, got {item!r}")
        elif key == "max_moves":
            if isinstance(item, bool) or not isinstance(item, int) or item < 0:
                raise ValueError(f"{key}: expected a whole number >= 0, got {item!r}")
        elif isinstance(item, bool) or not isinstance(item, (int, float)) or item <= 0:
            raise ValueError(f"{key}: expected a number > 0, got {item!r}")
        args[key] = item
    return RebalanceConfig(**{"enabled": True, **args})


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


# key -> (the master command's parameter it sets, how a value is checked)
KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "cell": ("cell", _text),
    "listen": ("listen", _text),
    "host": ("host", _text),
    "port": ("port", _port),
    "advertise": ("advertise", _text),
    "store": ("store", _text),
    "tokens": ("tokens", _text),
    "quota": ("quota", _text),
    "policy": ("policy", _text),
    "queue-order": ("queue_order", _order),
    "shares": ("shares", _shares),
    "schedulers": ("schedulers", _schedulers),
    "reclamation": ("reclamation", _flag),
    "rebalance": ("rebalance", _rebalance),
    "poll-interval": ("poll_interval", _positive),
    "misses-to-down": ("misses_to_down", _count),
    "reschedule-rate": ("reschedule_rate", _positive),
    "speculation-budget": ("speculation_budget", _count),
    "speculation-per-job": ("speculation_per_job", _count),
    "machine-queues": ("machine_queues", _flag),
    "machine-queue-length": ("machine_queue_length", _count),
    "validate": ("validate", _flag),
    "write-config": ("write_config", _flag),
    "verbose": ("verbose", _flag),
    "log-format": ("log_format", _choice("log-format", ("text", "json"))),
    "log-level": ("log_level", _choice("log-level", ("debug", "info", "warning", "error"))),
}


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ValueError saying what was expected."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:7100, got {value!r}")
    return host, int(port)


def _relative_to(base: Path, key: str, value: str) -> str:
    if key == "store":
        if value.startswith("sqlite://") and not value.startswith("sqlite:///"):
            return f"sqlite:///{(base / value[len('sqlite://'):]).resolve()}"
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def load_cell_config(path: Path) -> dict[str, Any]:
    """The file's settings as ``{master parameter name: value}`` (``listen`` becomes ``host`` and
    ``port``); raises CellConfigError."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise CellConfigError(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise CellConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CellConfigError(f"{path}: expected a mapping of settings (cell, store, policy, ...), "
                              f"got {type(data).__name__}")
    settings: dict[str, Any] = {}
    for raw, value in data.items():
        key = str(raw).replace("_", "-")
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(KEYS)}"
            raise CellConfigError(f"{path}: unknown key {raw!r}{hint}")
        name, check = KEYS[key]
        try:
            value = check(value)
            if key == "listen":
                settings["host"], settings["port"] = split_listen(value)
                continue
        except ValueError as e:
            said = str(e)  # a profile's error names its own place (schedulers[1].bands)
            raise CellConfigError(f"{path}: {said if said.startswith(key) else f'{key}: {said}'}") from None
        if key in ("tokens", "quota", "store"):
            value = _relative_to(path.resolve().parent, key, value)
        settings[name] = value
    if "listen" in {str(k).replace("_", "-") for k in data} and ({"host", "port"} & {str(k) for k in data}):
        raise CellConfigError(f"{path}: listen and host/port both given; give listen, or host and port")
    return settings
