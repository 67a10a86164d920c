"""Reading resource quantities: the one parser every door of corral uses.

Two readings of a plain number exist, and each caller names its own:

* **human** (job specs, quota files, ``--capacity``): a number of cpu is
  *cores* (``2``, ``1.5``), a number of bytes is bytes (``1073741824``);
* **units** (``units=True``: what agents and the master send each other,
  machine registration): an integer *is* corral's unit (millicores, bytes),
  a float is refused.

In both, a string is a quantity as people type it: ``"1.5"`` cores,
``"500m"`` millicores, ``"512Mi"``, ``"2Gi"``, ``"1.5G"``, ``"100k"`` bytes.
Booleans, NaN, infinities and negative amounts are refused, and so is
anything over the bounds (by default one task's or machine's: 100,000 cores,
64 TiB, 64 GPUs), so that sums over tasks and jobs stay far inside int64.

Every error is a :class:`QuantityError` carrying ``field`` (when the caller
named it) and ``message`` (what was expected and what came); the mapping
readers return ``(field, message)`` pairs instead of raising.

This module imports nothing of corral (``resources.py`` builds on it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal

GPU_MILLI_WHOLE = 1000
RESOURCE_KEYS: tuple[str, ...] = ("cpu", "memory", "disk", "gpu")

# One task's (or machine's) bounds: 100,000 cores, 64 TiB, 64 GPUs.
MAX_CPU_MILLI = 100_000_000
MAX_BYTES = 2**46
MAX_GPUS = 64

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_BYTES_TEXT = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z]{{0,2}})\s*$")
_CPU_TEXT = re.compile(rf"^\s*({_NUMBER})\s*(m?)\s*$")
_NUMBER_TEXT = re.compile(rf"^\s*{_NUMBER}\s*$")
_WHOLE_TEXT = re.compile(r"^\s*([0-9]+)\s*$")

CPU_EXPECTED = "expected cpu cores like 1.5 or millicores like 500m"
BYTES_EXPECTED = "expected a byte quantity like 512Mi or 2Gi"


class QuantityError(ValueError):
    """A quantity that cannot be read. ``field`` names it when the caller said which
    (``resources.memory``); ``message`` says what was expected and what came."""

    def __init__(self, message: str, field: str = ""):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(self.field, self.message)]


@dataclass(frozen=True)
class Bounds:
    """The largest amounts accepted, in corral units (gpu: whole GPUs)."""

    cpu: int = MAX_CPU_MILLI
    memory: int = MAX_BYTES
    disk: int = MAX_BYTES
    gpu: int = MAX_GPUS


TASK_BOUNDS = Bounds()
# A quota covers a user's jobs across the cell, so its bounds are a thousand machines' worth
# (100 million cores, 64 PiB, 64,000 GPUs): still far inside int64 in milli-GPU.
QUOTA_BOUNDS = Bounds(cpu=MAX_CPU_MILLI * 1000, memory=MAX_BYTES * 1024, disk=MAX_BYTES * 1024, gpu=MAX_GPUS * 1000)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown_gpus(limit_milli: int) -> str:
    return f"{limit_milli / GPU_MILLI_WHOLE:g} GPUs"


def _finite(value: int | float) -> bool:
    # math.isfinite would overflow on an integer too large for a float; every integer is finite.
    return isinstance(value, int) or math.isfinite(value)


def _shown_cpu(limit: int) -> str:
    return f"{limit / 1000:g} cores" if limit % 1000 else f"{limit // 1000} cores"


def _shown_bytes(limit: int) -> str:
    for suffix, factor in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        if limit >= factor and limit % factor == 0:
            return f"{limit // factor}{suffix}"
    return f"{limit} bytes"


def _checked(amount: float | int, limit: int | None, shown: Callable[[int], str], value: Any, field: str) -> int:
    """``amount`` (corral units, possibly fractional) as an int, refused over ``limit`` (None: no limit)."""
    if limit is not None and amount > limit:
        raise QuantityError(f"expected at most {shown(limit)}, got {value!r}", field)
    if isinstance(amount, float) and not math.isfinite(amount):
        raise QuantityError(f"expected a finite amount, got {value!r}", field)
    return int(round(amount))


def parse_cpu(value: Any, field: str = "", *, units: bool = False,
              limit: int | None = MAX_CPU_MILLI) -> int:
    """A cpu quantity in millicores. Strings: ``"1.5"`` cores, ``"500m"`` millicores. Numbers:
    cores, or with ``units=True`` an integer of millicores (floats refused)."""
    if units and not isinstance(value, str):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise QuantityError(f"expected an integer (millicores) or a quantity string, got {value!r}", field)
        return _checked(value, limit, _shown_cpu, value, field)
    if _is_number(value):
        if not _finite(value) or value < 0:
            raise QuantityError(f"{CPU_EXPECTED}, got {value!r}", field)
        return _checked(value * 1000, limit, _shown_cpu, value, field)
    match = _CPU_TEXT.match(value) if isinstance(value, str) else None
    if not match:
        raise QuantityError(f"{CPU_EXPECTED}, got {value!r}", field)
    number = float(match.group(1))
    if not math.isfinite(number):
        raise QuantityError(f"{CPU_EXPECTED}, got {value!r}", field)
    milli = number if match.group(2) else number * 1000
    return _checked(milli, limit, _shown_cpu, value, field)


def parse_bytes(value: Any, field: str = "", *, units: bool = False,
                limit: int | None = MAX_BYTES) -> int:
    """A byte quantity: ``1073741824``, ``"512Mi"``, ``"2Gi"``, ``"1.5G"``, ``"100k"``. With
    ``units=True`` a number must be an integer."""
    if units and not isinstance(value, str):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise QuantityError(f"expected an integer (bytes) or a quantity string, got {value!r}", field)
        return _checked(value, limit, _shown_bytes, value, field)
    if _is_number(value):
        if not _finite(value):
            raise QuantityError(f"{BYTES_EXPECTED}, got {value!r}", field)
        if value < 0:
            raise QuantityError(f"expected a non-negative byte quantity, got {value!r}", field)
        return _checked(value, limit, _shown_bytes, value, field)
    match = _BYTES_TEXT.match(value) if isinstance(value, str) else None
    if not match:
        raise QuantityError(f"{BYTES_EXPECTED}, got {value!r}", field)
    number, suffix = float(match.group(1)), match.group(2)
    factor = 1 if suffix in ("", "B") else _BINARY.get(suffix) or _DECIMAL.get(suffix)
    if factor is None:
        raise QuantityError(f"unknown unit {suffix!r} in {value!r}; expected one of Ki, Mi, Gi, Ti, k, M, G, T",
                            field)
    if not math.isfinite(number * factor):
        raise QuantityError(f"{BYTES_EXPECTED}, got {value!r}", field)
    return _checked(number * factor, limit, _shown_bytes, value, field)


def parse_gpu_count(value: Any, field: str = "", *, limit: int = MAX_GPUS) -> int:
    """A whole number of GPUs in ``0..limit``: an integer, or a string of digits."""
    match = _WHOLE_TEXT.match(value) if isinstance(value, str) else None
    if match:
        count = int(match.group(1))
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        count = -1
    if not 0 <= count <= limit:
        raise QuantityError(f"expected a whole number of GPUs 0..{limit}, got {value!r}", field)
    return count


def parse_gpu_milli(value: Any, field: str = "", *, limit: int = MAX_GPUS) -> int:
    """An amount of GPUs that may be fractional (a quota: ``2.5``) -> milli-GPU (2500)."""
    amount: float | None = None
    try:
        if _is_number(value) or (isinstance(value, str) and _NUMBER_TEXT.match(value)):
            amount = float(value)
    except OverflowError:  # an integer too large for a float
        amount = math.inf
    if amount is None or not math.isfinite(amount) or amount < 0:
        raise QuantityError(f"expected a number of GPUs like 2 or 0.5, got {value!r}", field)
    return _checked(amount * GPU_MILLI_WHOLE, limit * GPU_MILLI_WHOLE, _shown_gpus, value, field)


def parse_resource_mapping(
    data: Any, where: str, *, units: bool = False, gpu: Literal["count", "milli"] = "count",
    bounds: Bounds = TASK_BOUNDS, unknown: Literal["refuse", "ignore"] = "refuse",
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``{cpu: 16, memory: 64Gi, disk: 1Ti, gpu: 2}`` (any subset) -> corral units, and the errors as
    ``(f"{where}.{key}", message)``. ``gpu="count"`` reads whole GPUs, ``"milli"`` a fractional
    amount in milli-GPU. Keys given and read are in the dict; a bad one is left out."""
    if not isinstance(data, dict):
        return {}, [(where, f"expected a mapping like {{cpu: 16, memory: 64Gi}}, got {data!r}")]
    values: dict[str, int] = {}
    errors: list[tuple[str, str]] = []
    for key, value in data.items():
        field = f"{where}.{key}"
        try:
            if key == "cpu":
                values[key] = parse_cpu(value, field, units=units, limit=bounds.cpu)
            elif key in ("memory", "disk"):
                values[key] = parse_bytes(value, field, units=units, limit=getattr(bounds, key))
            elif key == "gpu" and gpu == "milli":
                values[key] = parse_gpu_milli(value, field, limit=bounds.gpu)
            elif key == "gpu":
                values[key] = parse_gpu_count(value, field, limit=bounds.gpu)
            elif unknown == "refuse":
                errors.append((field, f"unknown resource; expected one of {', '.join(RESOURCE_KEYS)}"))
        except QuantityError as e:
            errors.append((e.field, e.message))
    return values, errors


def parse_capacity_mapping(value: Any, where: str = "capacity") -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A machine's capacity as it registers -> ``({cpu, memory, disk, gpu}, errors)``.

    Integers are corral units (millicores, bytes), as agents send them; strings are quantities
    people type (``"8"`` cores, ``"500m"``, ``"16Gi"``). ``gpu`` is a whole integer 0..64. cpu
    and memory must be greater than 0; a missing dimension is 0; unknown keys are ignored. The
    dict always has the four keys (a bad one reads 0; every gpu reads 0 once there is any error);
    ``errors`` is ``[(field, message)]``, empty when the capacity is good.
    """
    mapping = value if isinstance(value, dict) else {}
    capacity: dict[str, int] = {}
    errors: list[tuple[str, str]] = []
    for key, parse in (("cpu", parse_cpu), ("memory", parse_bytes), ("disk", parse_bytes)):
        try:
            # Unbounded here: the bounds are checked below, on what was read.
            capacity[key] = parse(mapping.get(key, 0), f"{where}.{key}", units=True, limit=None)
        except QuantityError as e:
            errors.append((e.field, e.message))
    gpu = mapping.get("gpu", 0)
    if isinstance(gpu, bool) or not isinstance(gpu, int) or not 0 <= gpu <= MAX_GPUS:
        errors.append((f"{where}.gpu", f"expected a whole number of GPUs 0..{MAX_GPUS}, got {gpu!r}"))
    capacity["gpu"] = gpu if not errors else 0
    errors += bounds_errors(capacity, where)
    if not isinstance(value, dict):
        errors.append((where, "expected a mapping {cpu, memory, disk, gpu}"))
    elif not capacity.get("cpu") or not capacity.get("memory"):
        errors.append((where, "expected cpu and memory greater than 0"))
    return {key: capacity.get(key, 0) for key in RESOURCE_KEYS}, errors


def bounds_errors(values: dict[str, int], where: str, bounds: Bounds = TASK_BOUNDS) -> list[tuple[str, str]]:
    """Field errors for already-read cpu/memory/disk values (corral units) beyond ``bounds``."""
    errors = []
    for key, shown in (("cpu", _shown_cpu(bounds.cpu)), ("memory", _shown_bytes(bounds.memory)),
                       ("disk", _shown_bytes(bounds.disk))):
        if values.get(key, 0) > getattr(bounds, key):
            errors.append((f"{where}.{key}", f"expected at most {shown}, got {values[key]}"))
    return errors


def quantity_validator(*fields: str, parse: Callable[..., int], **options: Any) -> Any:
    """A pydantic ``before`` validator of ``fields`` that reads them with ``parse`` (one of this
    module's parsers, given ``options``); a QuantityError becomes the ValueError pydantic reports
    with the field's name. Use in a model's body: ``_cpu = quantity_validator("cpu", parse=parse_cpu)``."""
    from pydantic import field_validator

    def check(cls: type, value: Any) -> int:
        try:
            return parse(value, **options)
        except QuantityError as e:
            raise ValueError(e.message) from None

    return field_validator(*fields, mode="before")(classmethod(check))
