"""Reading the master's YAML files (quotas, tokens): one error that names the file and the entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """A quota or tokens file that cannot be read; the message names the entry."""


def read_yaml(path: str | Path, what: str) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise ConfigFileError(f"cannot read {what} file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigFileError(f"{what} file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
