"""Constraints on machine attributes: ``rack != r7``, ``zone in (a, b)``, ``ssd exists``."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPS: tuple[str, ...] = ("==", "!=", "in", "not_in", "exists", "not_exists")
_TEXT = re.compile(
    r"^\s*(?P<attr>[A-Za-z0-9_.\-/]+)\s*(?P<op>==|!=|=|not_in|not in|in|exists|not_exists)\s*(?P<rest>.*?)\s*$"
)


class ConstraintError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Constraint:
    """A predicate on one machine attribute; a missing attribute never equals anything."""

    attribute: str
    op: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ConstraintError(f"op must be one of {', '.join(OPS)}, got {self.op!r}")
        if self.op in ("exists", "not_exists"):
            if self.values:
                raise ConstraintError(f"{self.op} takes no value")
        elif not self.values:
            raise ConstraintError(f"{self.op} needs a value")
        elif self.op in ("==", "!=") and len(self.values) != 1:
            raise ConstraintError(f"{self.op} takes exactly one value")

    @classmethod
    def parse(cls, text: str) -> "Constraint":
        """Read ``"rack != r7"``, ``"zone in a,b"``, ``"ssd exists"``."""
        match = _TEXT.match(text)
        if not match:
            raise ConstraintError(
                f"expected '<attribute> <op> <value>' with op one of {', '.join(OPS)}, got {text!r}"
            )
        op = {"=": "==", "not in": "not_in"}.get(match["op"], match["op"])
        rest = match["rest"].strip("()[] ")
        values = tuple(v.strip() for v in rest.split(",") if v.strip()) if rest else ()
        return cls(match["attr"], op, values)

    def matches(self, attributes: dict[str, str]) -> bool:
        value = attributes.get(self.attribute)
        if self.op == "exists":
            return value is not None
        if self.op == "not_exists":
            return value is None
        if self.op in ("==", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values  # != and not_in

    def __str__(self) -> str:
        if self.op in ("exists", "not_exists"):
            return f"{self.attribute} {self.op}"
        if self.op in ("==", "!="):
            return f"{self.attribute}{self.op}{self.values[0]}"
        return f"{self.attribute} {self.op.replace('_', ' ')} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class SoftConstraint:
    """A preference: machines that satisfy it score ``weight`` higher."""

    constraint: Constraint
    weight: float = 1.0
