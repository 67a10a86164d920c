"""The one error a command refusal raises, mapped to an HTTP status by the API."""

from __future__ import annotations


class AdmissionError(ValueError):
    """A command the master refuses. ``status`` is the HTTP status it maps to; ``errors`` are
    ``(field, message)`` pairs."""

    def __init__(self, status: int, errors: list[tuple[str, str]], kind: str = "invalid"):
        self.status, self.errors, self.kind = status, errors, kind
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))


class MasterUnavailable(RuntimeError):
    """The master cannot accept writes (its store fails, or it is not the leader): HTTP 503."""
