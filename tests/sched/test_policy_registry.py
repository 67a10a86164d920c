"""The policy registry: complete at import, specs read in one place, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral.sched.policy import (DEFAULT_POLICY, GPU_POLICIES, PolicyError, PolicySpec, known_policies, make_policy,
                                 parse_policy_spec)

ROOT = Path(__file__).resolve().parents[2]


def test_a_fresh_interpreter_can_make_every_policy_by_name_without_the_simulator():
    code = (
        "import json, sys\n"
        "from corral.sched.policy import known_policies, make_policy\n"
        "names = known_policies()\n"
        "made = {name: make_policy(name, seed=1).name for name in names}\n"
        "print(json.dumps({'made': made, 'sim': sorted(m for m in sys.modules if m.startswith('corral.sim'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"hybrid", "best-fit", "worst-fit", "random", *GPU_POLICIES} <= set(result["made"])
    assert result["made"]["fgd"] == "fgd" and result["made"]["fgd-lookahead"] == "fgd-lookahead"
    assert result["sim"] == []


def test_known_policies_are_sorted_and_each_makes_a_policy_of_that_name():
    names = known_policies()
    assert names == sorted(names) and DEFAULT_POLICY in names
    for name in names:
        assert make_policy(name).name == name


def test_an_unknown_name_is_a_one_line_value_error_naming_every_known_policy():
    with pytest.raises(ValueError) as caught:
        make_policy("tightest")
    message = str(caught.value)
    assert isinstance(caught.value, PolicyError)
    assert "\n" not in message and message.startswith("unknown policy 'tightest': expected one of ")
    assert all(name in message for name in known_policies())


@pytest.mark.parametrize("case, text, want", [
    ("a preset name is a preset", "fgd", PolicySpec("fgd", preset="fgd")),
    ("spaces around a preset are dropped", "  hybrid ", PolicySpec("hybrid", preset="hybrid")),
    ("weighted scorers keep their order", "best-fit=1,spread=0.5",
     PolicySpec("best-fit=1,spread=0.5", weights=(("best-fit", 1.0), ("spread", 0.5)))),
    ("spaces inside weighted scorers are allowed", "best-fit = 2 , random=0",
     PolicySpec("best-fit = 2 , random=0", weights=(("best-fit", 2.0), ("random", 0.0)))),
])
def test_policy_specs_are_read_into_a_preset_or_weights(case, text, want):
    assert parse_policy_spec(text) == want
    assert make_policy(text).name == want.text


@pytest.mark.parametrize("case, text, words", [
    ("an unknown name lists the presets and the scorers", "nosuch", "or scorer=weight pairs with scorers"),
    ("an empty spec is unknown", "", "unknown policy ''"),
    ("an unknown scorer in weights is unknown", "best-fit=1,tightest=2", "unknown policy"),
    ("a scorer without a weight is refused", "best-fit=", "unknown policy"),
    ("a trailing comma is refused", "best-fit=1,", "unknown policy"),
    ("a weight that is not a number is named", "best-fit=lots", "weight of best-fit must be a number >= 0"),
    ("a NaN weight is refused", "spread=nan", "weight of spread must be a number >= 0"),
    ("a negative weight is refused", "spread=-1", "weight of spread must be a number >= 0"),
    ("a scorer named twice is refused", "spread=1,spread=2", "named twice"),
    ("weights that are all zero are refused", "spread=0", "at least one weight greater than 0"),
    ("a spec that is not text is refused", 3, "expected a policy name"),
])
def test_bad_policy_specs_give_one_line_saying_what_was_expected(case, text, words):
    with pytest.raises(PolicyError) as caught:
        parse_policy_spec(text)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_openb_experiment_names_map_onto_the_registry():
    from corral.sim.openb.policies import OPENB_POLICIES, REGISTRY_NAMES, check_openb_policy, policy_names

    assert set(REGISTRY_NAMES.values()) <= set(known_policies())
    assert set(OPENB_POLICIES) | set(known_policies()) == set(policy_names())
    for spec in ["corral", "random", "hybrid", "best-fit=1,spread=0.5"]:
        check_openb_policy(spec)
    with pytest.raises(PolicyError, match="expected one of .*corral"):
        check_openb_policy("nosuch")
    with pytest.raises(PolicyError, match="weight of spread"):
        check_openb_policy("spread=x")
