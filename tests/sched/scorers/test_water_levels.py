"""Sigma's water levels: stability first spreads (lowest level), utilisation first packs and keeps
whole machines free; both selectable per cell (``--policy``) and per job (``placement:``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from corral.model.spec import SpecError, parse_job_spec
from corral.sched.cellview import CellView
from corral.sched.policy import make_policy, parse_policy_spec
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.scorers.water_levels import StabilityFirst, UtilisationFirst
from corral.sched.testing import context, machine, occupy, pending, request

CELL = [machine("empty", cpu=8, memory_gib=32), machine("quarter", cpu=8, memory_gib=32),
        machine("half", cpu=8, memory_gib=32)]
RUNNING = [("quarter", request(cpu=2, memory_gib=4)), ("half", request(cpu=4, memory_gib=8))]


def view_of(cell, running) -> CellView:
    view = CellView(cell)
    for n, (name, req) in enumerate(running):
        occupy(view, name, req, f"old/{n}")
    return view


CASES = [
    ("stability first puts the task where the fullest dimension stays lowest", StabilityFirst(), CELL, RUNNING,
     request(cpu=1, memory_gib=1), "empty"),
    ("stability first looks at the fullest dimension, not the sum",
     StabilityFirst(), [machine("cpu-full", cpu=8, memory_gib=32), machine("even", cpu=8, memory_gib=32)],
     [("cpu-full", request(cpu=6, memory_gib=1)), ("even", request(cpu=3, memory_gib=12))],
     request(cpu=1, memory_gib=1), "even"),
    ("utilisation first fills the fullest machine that still fits", UtilisationFirst(), CELL, RUNNING,
     request(cpu=1, memory_gib=1), "half"),
    ("utilisation first opens an empty machine last even when the task would fill it whole",
     UtilisationFirst(), CELL, RUNNING, request(cpu=4, memory_gib=4), "half"),
    ("utilisation first opens an empty machine when nothing busy can take the task", UtilisationFirst(),
     [machine("empty", cpu=8, memory_gib=32), machine("busy", cpu=8, memory_gib=32)],
     [("busy", request(cpu=7, memory_gib=1))], request(cpu=2, memory_gib=1), "empty"),
]


@pytest.mark.parametrize("case, scorer, cell, running, req, winner", CASES, ids=[c[0] for c in CASES])
def test_the_water_level_picks_the_expected_machine(case, scorer, cell, running, req, winner):
    view = view_of(cell, running)
    ctx = context(view, req)
    scores = scorer.score(ctx)
    fits = (ctx.free >= req.vector).all(axis=1)
    assert ((0 <= scores) & (scores <= 1)).all()
    assert [m.name for m in cell][int(np.argmax(np.where(fits, scores, -1)))] == winner


def test_the_level_is_the_fullest_dimension_after_placement():
    view = view_of([machine("m", cpu=8, memory_gib=32)], [("m", request(cpu=2, memory_gib=4))])
    # After a 2-cpu/4-GiB task: cpu 4/8, memory 8/32 -> level 0.5.
    assert StabilityFirst().score(context(view, request(cpu=2, memory_gib=4)))[0] == pytest.approx(0.5)
    assert UtilisationFirst().score(context(view, request(cpu=2, memory_gib=4)))[0] == pytest.approx(0.75)


def schedule(policy: str, reqs) -> dict[str, str]:
    view = CellView([machine(f"m{i}", cpu=8, memory_gib=32) for i in range(4)])
    work = [t for n, req in enumerate(reqs) for t in pending(req, count=4, job=f"j{n}")]
    plan = Scheduler(SchedulerConfig(policy=policy)).schedule(view, work)
    return plan.placed_on()


def test_as_cell_policies_stability_first_spreads_and_utilisation_first_packs():
    spread = schedule("stability-first", [request(cpu=2, memory_gib=4)])
    packed = schedule("utilisation-first", [request(cpu=2, memory_gib=4)])
    assert len(set(spread.values())) == 4
    assert len(set(packed.values())) == 1


@pytest.mark.parametrize("name", ["stability-first", "utilisation-first", "utilization-first"])
def test_the_names_are_registered_presets_and_scorers(name):
    assert parse_policy_spec(name).preset == name
    assert make_policy(name).name == name
    assert parse_policy_spec(f"{name}=1,soft-constraints=0.5").weights[0] == (name, 1.0)


def test_a_job_placement_overrides_the_cell_policy_for_its_own_tasks_only():
    packed = replace(request(cpu=2, memory_gib=4), placement="utilisation-first")
    plain = request(cpu=1, memory_gib=2)
    placed = schedule("stability-first", [packed, plain])
    # j0 packs its four 2-cpu tasks onto one 8-cpu machine; j1, under the cell's stability first,
    # spreads over the three machines left (the full one takes nothing more).
    assert len({placed[f"j0/{i}"] for i in range(4)}) == 1, placed
    assert len({placed[f"j1/{i}"] for i in range(4)}) == 3, placed
    assert not {placed[f"j1/{i}"] for i in range(4)} & {placed["j0/0"]}, placed


@pytest.mark.parametrize("given, want", [("stability-first", "stability-first"),
                                         ("utilisation-first", "utilisation-first"),
                                         ("utilization-first", "utilisation-first")])
def test_a_spec_names_its_placement_and_the_american_spelling_is_the_same(given, want):
    spec = parse_job_spec({"name": "web", "user": "alice", "resources": {"cpu": 1, "memory": "1Gi"},
                           "placement": given})
    assert spec.placement == want


def test_an_unknown_placement_is_refused_at_admission_naming_the_field_and_the_choices():
    with pytest.raises(SpecError) as caught:
        parse_job_spec({"name": "web", "user": "alice", "resources": {"cpu": 1, "memory": "1Gi"},
                        "placement": "pack-hard"})
    (field, message), = caught.value.errors
    assert field == "placement"
    assert "stability-first" in message and "utilisation-first" in message and "'pack-hard'" in message
