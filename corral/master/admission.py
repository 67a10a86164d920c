"""Admission: what the master accepts (job specs, machines) and refuses, with the field at fault.

Quotas live in :mod:`corral.master.quota`, tokens in :mod:`corral.master.auth`.
"""

from __future__ import annotations

from corral.master.auth import ROLES, Principal, Tokens  # noqa: F401  (re-exported)
from corral.master.errors import AdmissionError  # noqa: F401
from corral.master.quota import ConfigFileError, Quotas, describe_vector, parse_vector, quantity_bounds  # noqa: F401
