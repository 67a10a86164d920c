"""Which devices a task may open: a fence over one character-device major.

A :class:`DeviceFence` says: of the character devices of ``major``, the task may open only the
minors in ``allowed``; every other device is left alone. The isolation enforces it where a devices
controller exists (``isolation.py``):

* cgroup v1: the task's ``devices`` cgroup is created allowing everything (inherited), then each
  minor of ``known`` (those of ``major`` on this machine) not in ``allowed`` is written to
  ``devices.deny`` (``c 195:1 rwm``): v1 cannot carve exceptions out of a wildcard deny while the
  cgroup allows by default, so the fence names every device it closes;
* cgroup v2: a BPF device program refuses ``major:*`` except ``allowed`` (``devbpf.py``), which
  also covers minors created after the task started.

For GPUs (``gpus.gpu_fence``) the major is NVIDIA's 195: ``/dev/nvidiaN`` is minor N,
``/dev/nvidiactl`` 255 and ``/dev/nvidia-modeset`` 254 (open to a task with any GPU, closed to a
task with none). ``/dev/nvidia-uvm`` has a dynamic major and stays open: it reaches no GPU
without ``nvidiactl`` and a GPU's node.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceFence:
    major: int
    allowed: frozenset[int]  # minors of ``major`` the task may open
    known: frozenset[int] = frozenset()  # minors of ``major`` on this machine (what v1 denies one by one)

    def v1_deny_rules(self) -> list[str]:
        """The ``devices.deny`` lines closing every known minor the task may not open."""
        return [f"c {self.major}:{minor} rwm" for minor in sorted(self.known - self.allowed)]


def char_minors(major: int, dev: str = "/dev") -> frozenset[int]:
    """The minors of the character devices of ``major`` under ``dev`` (not recursing)."""
    found = set()
    try:
        names = os.listdir(dev)
    except OSError:
        return frozenset()
    for name in names:
        try:
            st = os.stat(os.path.join(dev, name), follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == major:
            found.add(os.minor(st.st_rdev))
    return frozenset(found)
