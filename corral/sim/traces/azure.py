"""Azure Public Dataset V1 VM arrivals (as Huawei's trace_generation_rnn binned them), on a synthesised cell.

In: a flavour trace (``traces/v1.test.txt``: per 300-s bin, the VMs that arrived in it as flavour
letters, ``|`` between batches of one tenant), its partner duration trace (``v1.test.c2591400.txt``:
``U<bin>`` finished, ``C<bin>`` still running at the censoring time 2,591,400 s), and ``maps/``
(``flav_map.txt``: letter -> vCPU, GB; ``v1.interval_map.txt``: duration in s -> bin). Out: one
job of one task per VM. Exact times are not in the files, so they are drawn with ``seed``.
"""

from __future__ import annotations

import math
import re
from itertools import zip_longest
from pathlib import Path

import numpy as np

from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import GiB, default_traces_dir, existing, peak_demand, rack_attributes

DEFAULT_FILE = "v1.test.txt"  # the test split is the only one of the three with ~2,600 bins AND durations
PRIORITY = 9  # production: a VM is a customer's long-lived machine; the trace has no priorities
USERS = 50
MACHINE_CPU, MACHINE_MEMORY = 64_000, 256 * GiB  # assumed host shape: 64 vCPU, 256 GiB
_CENSOR = re.compile(r"\.c(\d+)\.txt$")


def default_dir() -> Path:
    return default_traces_dir() / "azure-v1-vm-flavors-huawei"


def load_azure(path: str | Path | None = None, *, seed: int = 0, fill: float = 0.85, hours: float = 0.0) -> Trace:
    """The VMs of one flavour trace; ``hours`` > 0 keeps only those arriving in the first ``hours``.

    ``path`` is the dataset folder (then ``traces/v1.test.txt``) or a flavour trace file, whose
    duration trace ``<stem>.c<censor>.txt`` must sit beside it and ``maps/`` beside its folder.
    The machines are sized so the peak concurrent request is ``fill`` of the cell.
    """
    flavour_file = Path(path) if path is not None else default_dir()
    if flavour_file.is_dir():
        flavour_file = flavour_file / "traces" / DEFAULT_FILE
    existing(flavour_file, "Azure flavour trace")
    if not 0 < fill <= 1:
        raise TraceError(flavour_file, 0, f"option fill: expected a fraction in (0, 1], got {fill}")
    maps = flavour_file.parent.parent / "maps"
    flavours = _flavours(maps / "flav_map.txt")
    bin_low, bin_high, step = _intervals(maps / "v1.interval_map.txt")
    duration_file, censor = _duration_file(flavour_file)
    vms = _read(flavour_file, duration_file, flavours, len(bin_low))
    ends, batch, letters, censored, bins = vms
    rng = np.random.default_rng(seed)
    start = ends[0] - step if len(ends) else 0.0
    # One arrival instant per batch (one tenant's request), uniform in the batch's 300-s bin.
    offsets = rng.random(int(batch[-1]) + 1 if len(batch) else 0) * step
    arrival = ends - step - start + offsets[batch]
    span = bin_high[bins] - bin_low[bins]
    duration = np.minimum(bin_low[bins] + rng.random(len(bins)) * span, censor - start - arrival)
    users = rng.integers(0, USERS, size=len(offsets))[batch]
    keep = np.flatnonzero(arrival < hours * 3600) if hours > 0 else np.arange(len(arrival))
    jobs = []
    for i, t, letter, c, d, u in zip(keep.tolist(), arrival[keep].round(3).tolist(), letters[keep].tolist(),
                                     censored[keep].tolist(), duration[keep].round(3).tolist(),
                                     users[keep].tolist()):
        cpu, memory = flavours[letter]
        jobs.append(TraceJob(f"vm-{i:07d}", f"tenant{u:02d}", t, cpu, memory, duration=None if c else max(d, 0.0),
                             priority=PRIORITY, appclass="latency-sensitive"))
    sizes = np.array([flavours[x] for x in letters[keep].tolist()], dtype=float).reshape(-1, 2)
    end = np.where(censored[keep], np.inf, arrival[keep] + duration[keep])
    machines, sizing = _cell(peak_demand(arrival[keep], end, sizes), fill)
    notes = [
        f"Each VM is a production (priority {PRIORITY}), latency-sensitive job of one task; the trace has no "
        "priorities. Flavour memory 'GB' is read as GiB. No usage is given.",
        f"Arrival times are drawn (seed {seed}) uniformly inside their 300-s bin, one instant per batch; "
        "durations uniformly inside their duration bin (v1.interval_map.txt), kept below the censoring time.",
        "VMs still running at the censoring time (C bins) never finish: duration None.",
        "VMs that started before the file's first bin are not in it: the cell starts empty.",
        f"Batches of one tenant are not linked across bins: each batch gets one of {USERS} users at random.",
        f"The trace has no machines: {sizing}",
    ]
    if hours > 0:
        notes.append(f"Only the VMs arriving in the first {hours:g} hours are kept.")
    return Trace("azure", machines, sort_jobs(jobs), source=f"{flavour_file} + {duration_file.name}", notes=notes)


def _flavours(path: Path) -> dict[str, tuple[int, int]]:
    existing(path, "flavour map")
    out = {}
    for line, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            sizes, letter = text.split()
            vcpu, gb = (float(v) for v in sizes.split(","))
        except ValueError:
            raise TraceError(path, line, f"expected 'vCPU,GB letter' like '2,3.5 g', got {text!r}") from None
        out[letter] = (round(vcpu * 1000), round(gb * GiB))
    return out


def _intervals(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Per duration bin, the lowest and (exclusive) highest duration in s, and the time step (300 s)."""
    existing(path, "duration interval map")
    pairs = []
    for line, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            seconds, index = (int(v) for v in text.split())
        except ValueError:
            raise TraceError(path, line, f"expected 'seconds bin' like '300 1', got {text!r}") from None
        pairs.append((seconds, index))
    if len(pairs) < 2:
        raise TraceError(path, 0, "expected at least two 'seconds bin' lines")
    data = np.array(pairs)
    step = float(np.diff(data[:, 0]).min())
    bins = int(data[:, 1].max()) + 1
    low, high = np.full(bins, np.inf), np.zeros(bins)
    np.minimum.at(low, data[:, 1], data[:, 0])
    np.maximum.at(high, data[:, 1], data[:, 0] + step)  # the map lists durations on a 300-s grid
    low[np.isinf(low)] = 0  # a bin the map never names stays empty
    return low, high, step


def _duration_file(flavour_file: Path) -> tuple[Path, float]:
    matches = sorted(flavour_file.parent.glob(f"{flavour_file.stem}.c*.txt"))
    if not matches:
        raise TraceError(flavour_file, 0, f"expected its duration trace {flavour_file.stem}.c<censor>.txt beside it "
                                          "(v1.train has none in this copy)")
    return matches[0], float(_CENSOR.search(matches[0].name).group(1))


def _read(flavour_file: Path, duration_file: Path, flavours: dict, bins: int) -> tuple[np.ndarray, ...]:
    """Per VM: its bin's end time, its batch number, flavour letter, censored flag, duration bin."""
    ends, batch, letters, censored, dbins = [], [], [], [], []
    batches = 0
    with open(flavour_file) as ff, open(duration_file) as df:
        for line, (a, b) in enumerate(zip_longest(ff, df), 1):
            if a is None or b is None:
                short, other = (flavour_file, duration_file) if a is None else (duration_file, flavour_file)
                raise TraceError(short, line, f"expected as many lines as {other.name}; this file ends at line "
                                              f"{line - 1}")
            if not a.strip() and not b.strip():
                continue
            time_a, _, rest_a = a.strip().partition(" ")
            time_b, _, rest_b = b.strip().partition(" ")
            if not time_a.isdigit():
                raise TraceError(flavour_file, line, f"expected a bin end time in seconds, got {time_a!r}")
            if time_a != time_b:
                raise TraceError(duration_file, line, f"expected time {time_a} as in {flavour_file.name}, "
                                                      f"got {time_b!r}")
            tokens_a = [t for t in rest_a.split(",") if t]
            tokens_b = [t for t in rest_b.split(",") if t]
            if len(tokens_a) != len(tokens_b):
                raise TraceError(duration_file, line, f"expected {len(tokens_a)} entries as in {flavour_file.name}, "
                                                      f"got {len(tokens_b)}")
            batches += 1
            for x, y in zip(tokens_a, tokens_b):
                if x == "|":
                    if y != "|":
                        raise TraceError(duration_file, line, f"expected '|' where {flavour_file.name} has one, "
                                                              f"got {y!r}")
                    batches += 1
                    continue
                if x not in flavours:
                    raise TraceError(flavour_file, line, f"expected a flavour letter ({''.join(flavours)}), got {x!r}")
                if y[:1] not in ("U", "C") or not y[1:].isdigit() or int(y[1:]) >= bins:
                    raise TraceError(duration_file, line, f"expected U<bin> or C<bin> with bin < {bins}, got {y!r}")
                ends.append(int(time_a))
                batch.append(batches)
                letters.append(x)
                censored.append(y[0] == "C")
                dbins.append(int(y[1:]))
    # Renumber batches densely from 0 (empty ones were counted).
    batch_ids = np.unique(np.array(batch, dtype=np.int64), return_inverse=True)[1]
    return (np.array(ends, dtype=float), batch_ids, np.array(letters), np.array(censored, dtype=bool),
            np.array(dbins, dtype=np.int64))


def _cell(peak: np.ndarray, fill: float) -> tuple[list[TraceMachine], str]:
    count = max(1, math.ceil(float((peak / np.array([MACHINE_CPU, MACHINE_MEMORY])).max()) / fill))
    machines = [TraceMachine(f"h{i:05d}", MACHINE_CPU, MACHINE_MEMORY, attributes=rack_attributes(i))
                for i in range(count)]
    return machines, (f"{count} hosts of 64 vCPU and 256 GiB (an assumed two-socket host of the time; the "
                      f"largest flavour, 16 vCPU / 112 GB, fits) are synthesised so that the peak concurrent "
                      f"request ({peak[0] / 1000:,.0f} vCPU, {peak[1] / GiB:,.0f} GiB) is {fill:.0%} of the cell.")
