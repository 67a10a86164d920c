"""Where the CLI finds its master and token: ``CORRAL_ADDR`` / ``CORRAL_TOKEN``, else the config
file (``$CORRAL_CONFIG`` or ``~/.config/corral/config.yaml``) that ``corral master`` writes.

The file is YAML. ``write_config`` writes it in JSON's form (JSON is YAML) so every client command
reads it with the json module; a file in any other YAML form (written by hand, or by an earlier
corral) is read with PyYAML, which only then is imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class ClientConfigError(ValueError):
    pass


def config_path() -> Path:
    env = os.environ.get("CORRAL_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "corral" / "config.yaml"


def read_config() -> dict[str, Any]:
    path = config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ClientConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ClientConfigError(f"cannot read {path}: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise ClientConfigError(f"{path}: expected a mapping with addr and token")
    return data


def write_config(addr: str, token: str, ca: str | None = None) -> Path:
    """``addr``: one master's URL or several, comma-separated; ``ca``: the cell's CA certificate
    (an https master is verified against it)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"addr": addr, "token": token, **({"ca": ca} if ca else {})}, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def client_settings() -> tuple[str, str]:
    """``(addr, token)`` for the CLI; raises ClientConfigError saying what to set."""
    addr, token = os.environ.get("CORRAL_ADDR"), os.environ.get("CORRAL_TOKEN")
    if not addr or not token:
        config = read_config()
        addr = addr or config.get("addr")
        token = token or config.get("token")
    if not addr:
        raise ClientConfigError(f"no master address: set CORRAL_ADDR, or start a cell with `corral up` or "
                                f"`corral master` (they write {config_path()})")
    if not token:
        raise ClientConfigError(f"no token: set CORRAL_TOKEN, or start a cell with `corral up` or "
                                f"`corral master` (they write {config_path()})")
    addr = str(addr).rstrip("/")
    if "://" not in addr:  # "127.0.0.1:7100" means the master's HTTP address
        addr = "http://" + addr
    return addr, str(token)


def client_ca() -> str | None:
    """The cell's CA certificate the CLI verifies an https master against: ``CORRAL_CA``, else the
    config file's ``ca``; None: the system's CAs."""
    ca = os.environ.get("CORRAL_CA") or read_config().get("ca")
    return str(ca) if ca else None
