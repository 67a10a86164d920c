"""The cell configuration's ``rebalance:`` section."""

import pytest

from corral.cli.cellconfig import CellConfigError, load_cell_config
from corral.sched.rebalance.planner import RebalanceConfig


def test_a_rebalance_section_turns_the_rebalancer_on_with_its_settings(tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_text("rebalance: {interval_s: 30, max_moves: 4, defragment: false}\n")
    assert load_cell_config(path)["rebalance"] == RebalanceConfig(enabled=True, interval_s=30, max_moves=4,
                                                                  defragment=False)
    path.write_text("rebalance: {drain_timeout_s: 15}\n")
    assert load_cell_config(path)["rebalance"].drain_timeout_s == 15


@pytest.mark.parametrize("text, phrase", [
    ("rebalance: yes", "expected a mapping"),
    ("rebalance: {max_moves: -1}", "max_moves: expected a whole number >= 0"),
    ("rebalance: {interval_s: 0}", "interval_s: expected a number > 0"),
    ("rebalance: {drain_timeout_s: -5}", "drain_timeout_s: expected a number > 0"),
    ("rebalance: {enabled: 1}", "enabled: expected true or false"),
    ("rebalance: {moves: 3}", "unknown key 'moves'"),
])
def test_a_bad_rebalance_section_is_one_line_naming_the_key(tmp_path, text, phrase):
    path = tmp_path / "cell.yaml"
    path.write_text(text + "\n")
    with pytest.raises(CellConfigError) as err:
        load_cell_config(path)
    assert "rebalance" in str(err.value) and phrase in str(err.value), str(err.value)
