"""Names: jobs are ``<job>.<user>``, tasks ``<index>.<job>.<user>.<cell>`` (Borg's BNS names).

Users type shorter forms: a job as ``web`` (their own) or ``web.alice``; a
task as ``web/3``, ``web.alice/3`` or its full name.
"""

from __future__ import annotations

import re

from corral.master.errors import AdmissionError
from corral.master.records import job_id

_INDEX = re.compile(r"[0-9]{1,9}")  # ASCII digits only ("²".isdigit() is true)


def resolve_job(ref: str, user: str) -> str:
    """``web`` -> ``web.<user>``; ``web.alice`` stays."""
    parts = ref.split(".")
    if len(parts) == 1 and parts[0]:
        return job_id(parts[0], user)
    if len(parts) == 2 and all(parts):
        return ref
    raise AdmissionError(400, [("job", f"expected a job as NAME or NAME.USER, got {ref!r}")])


def resolve_task(ref: str, user: str, cell: str) -> str:
    """``web/3``, ``web.alice/3`` or ``3.web.alice.cell`` -> the task's full name."""
    if "/" in ref:
        job, _, index = ref.rpartition("/")
        if not _INDEX.fullmatch(index):
            raise AdmissionError(400, [("task", f"expected JOB/INDEX with a numeric index, got {ref!r}")])
        name, owner = resolve_job(job, user).split(".")
        return f"{int(index)}.{name}.{owner}.{cell}"
    parts = ref.split(".")
    if len(parts) == 4 and _INDEX.fullmatch(parts[0]) and all(parts):
        return ref
    raise AdmissionError(400, [("task", f"expected JOB/INDEX or INDEX.JOB.USER.CELL, got {ref!r}")])
