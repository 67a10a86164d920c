"""Machines: capacity, labels and failure domains."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.model.resources import Resources

# Failure domains are ordinary attributes with these well-known names, so that
# constraints ("rack != r7") and spreading use one mechanism.
RACK = "rack"
POWER = "power"
HOST = "host"  # every machine is its own domain: the master gives each one host=<its name>
FAILURE_DOMAINS: tuple[str, ...] = (HOST, RACK, POWER)


@dataclass(frozen=True)
class Machine:
    """One host of a cell.

    ``capacity.gpu`` is the number of GPUs (each 1000 milli-GPU) and
    ``gpu_model`` their model; ``attributes`` are free-form labels (``rack``
    and ``power`` name the failure domains).
    """

    name: str
    capacity: Resources
    gpu_model: str = ""
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def rack(self) -> str:
        return self.attributes.get(RACK, "")

    @property
    def power(self) -> str:
        return self.attributes.get(POWER, "")
