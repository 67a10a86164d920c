"""Quotas per user and priority band (Borg §2.5), and reading the master's YAML files.

Quota file (YAML)::

    alice:
      production: {cpu: 16, memory: 64Gi, gpu: 2}
      batch: {cpu: 64, memory: 256Gi}
    "*":                       # anyone not listed
      batch: {cpu: 4, memory: 8Gi}

A band a user has no entry for has a zero quota; priority 0 is never limited.
Without a quota file nothing is limited. Quota is checked at admission only,
against the limits of every task of the user's live jobs in the band.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from corral.master.configfiles import ConfigFileError, read_yaml
from corral.master.errors import AdmissionError
from corral.model.priority import Band, band_of
from corral.model.quantity import QUOTA_BOUNDS, bounds_errors, parse_resource_mapping
from corral.model.resources import CPU, DIMS, DISK, GPU, GPU_MILLI_WHOLE, MEMORY, format_bytes, format_cpu


def parse_vector(data: Any, where: str) -> np.ndarray:
    """``{cpu: 16, memory: 64Gi, disk: 1Ti, gpu: 2}`` -> the dense vector (gpu in milli-GPU; a quota may
    hold a fraction of a GPU, 2.5). Raises :class:`ConfigFileError` naming each bad entry."""
    values, errors = parse_resource_mapping(data, where, gpu="milli", bounds=QUOTA_BOUNDS)
    if errors:
        raise ConfigFileError("; ".join(f"{field}: {message}" for field, message in errors))
    return np.array([values.get(dim, 0) for dim in DIMS], dtype=np.int64)


def describe_vector(vec: np.ndarray) -> dict[str, str]:
    return {"cpu": format_cpu(int(vec[CPU])), "memory": format_bytes(int(vec[MEMORY])),
            "disk": format_bytes(int(vec[DISK])), "gpu": f"{vec[GPU] / GPU_MILLI_WHOLE:g}"}


def quantity_bounds(values: dict[str, int], where: str) -> list[tuple[str, str]]:
    """Field errors for cpu/memory/disk values (corral units) beyond one task's or machine's bounds
    (100,000 cores, 64 TiB), so sums over a job's tasks and a user's jobs stay far inside int64."""
    return bounds_errors(values, where)


class Quotas:
    """Quota per user per band; ``Quotas(None)`` limits nothing."""

    def __init__(self, table: dict[str, dict[Band, np.ndarray]] | None = None):
        self.table = table

    @classmethod
    def parse(cls, data: Any, source: str = "quota") -> "Quotas":
        if not isinstance(data, dict):
            raise ConfigFileError(f"{source}: expected a mapping user -> band -> resources")
        table: dict[str, dict[Band, np.ndarray]] = {}
        bands = {b.value: b for b in Band}
        for user, per_band in data.items():
            if not isinstance(per_band, dict):
                raise ConfigFileError(f"{source}: {user}: expected a mapping band -> resources")
            table[str(user)] = {}
            for band, vec in per_band.items():
                if band not in bands:
                    raise ConfigFileError(f"{source}: {user}.{band}: expected a band ({', '.join(bands)})")
                table[str(user)][bands[band]] = parse_vector(vec, f"{user}.{band}")
        return cls(table)

    @classmethod
    def load(cls, path: str | Path | None) -> "Quotas":
        if path is None:
            return cls(None)
        return cls.parse(read_yaml(path, "quota"), str(path))

    def limit(self, user: str, band: Band) -> np.ndarray | None:
        if self.table is None:
            return None
        per_band = self.table.get(user, self.table.get("*", {}))
        return per_band.get(band, np.zeros(len(DIMS), dtype=np.int64))

    def check(self, user: str, priority: int, used: np.ndarray, asked: np.ndarray) -> None:
        """Raise :class:`AdmissionError` (the numbers in the message) if ``used + asked`` exceeds the
        user's quota in the band of ``priority``. Priority 0 is never limited."""
        if priority == 0:
            return
        band = band_of(priority)
        limit = self.limit(user, band)
        if limit is None:
            return
        total = used + asked
        over = [i for i in range(len(DIMS)) if total[i] > limit[i]]
        if not over:
            return
        errors = []
        for i in over:
            fmt = (lambda v: describe_vector(np.eye(len(DIMS), dtype=np.int64)[i] * v)[DIMS[i]])
            errors.append((f"quota.{band.value}.{DIMS[i]}",
                           f"user {user} would use {fmt(int(total[i]))} {DIMS[i]} in band {band.value} "
                           f"(in use {fmt(int(used[i]))} + this job {fmt(int(asked[i]))}), "
                           f"over the quota of {fmt(int(limit[i]))}"))
        raise AdmissionError(422, errors, "quota")


