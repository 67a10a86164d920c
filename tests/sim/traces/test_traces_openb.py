"""openb replayed in time: pods become one-task jobs arriving at creation and leaving at deletion."""

from collections import Counter
from pathlib import Path

import pytest

from corral.sim.openb.loader import MiB
from corral.sim.trace import TraceError
from corral.sim.traces.openb import load_openb

CSV = Path(__file__).resolve().parents[3].parent / "shared" / "traces" / "alibaba-gpu-v2023" / "csv"
POD_FILE = "openb_pod_list_default.csv"
pytestmark = pytest.mark.skipif(not (CSV / POD_FILE).exists(), reason=f"openb traces not found at {CSV}")


@pytest.fixture
def sample(tmp_path, head):
    """The node list and the first 30 pods, pod 0 (created at 0) replaced by pod 9 with a GPU model constraint."""
    head(CSV / "openb_node_list_gpu_node.csv", tmp_path / "openb_node_list_gpu_node.csv", 20)
    return head(CSV / POD_FILE, tmp_path / POD_FILE, 31, edit={
        2: "openb-pod-9999,12000,16384,1,1000,V100M16|V100M32,LS,Running,4975773,,4975773"})


def test_a_sample_maps_units_times_and_gpu_shares_as_corral_does(sample, valid):
    trace = valid(load_openb(sample.parent))
    assert len(trace.machines) == 19 and trace.machines[0].gpu_model == "P100"
    assert trace.machines[0].memory == 262144 * MiB and trace.machines[0].cpu == 64000
    assert len(trace.jobs) == 30 and trace.task_count() == 30
    jobs = {j.name: j for j in trace.jobs}
    first = jobs["openb-pod-0001"]  # the earliest creation (427061) is the trace's time 0
    assert (first.arrival, first.departure, first.duration) == (0.0, 12902960 - 427061, None)
    assert (first.cpu, first.memory, first.gpu, first.gpu_milli) == (6000, 12288 * MiB, 1, 460)
    assert jobs["openb-pod-0005"].gpu == 0  # a CPU-only pod
    assert jobs["openb-pod-9999"].gpu_models == ("V100M16", "V100M32")
    assert jobs["openb-pod-9999"].departure is None  # no deletion time: it runs to the end
    burstable = jobs["openb-pod-0017"]
    assert (burstable.gpu, burstable.priority, burstable.appclass) == (8, 5, "batch")
    assert (first.priority, first.appclass) == (9, "latency-sensitive")
    assert jobs["openb-pod-0022"].priority == 0


def test_the_default_workload_has_1213_machines_8152_pods_over_149_days_and_all_four_qos():
    trace = load_openb()
    assert (len(trace.machines), len(trace.jobs), trace.task_count()) == (1213, 8152, 8152)
    assert trace.horizon == 12902960.0
    assert Counter(j.priority for j in trace.jobs) == {9: 4647, 0: 3398, 5: 100, 10: 7}


def test_a_variant_with_times_loads_on_all_nodes_and_a_variant_without_times_is_refused():
    assert len(load_openb(workload="gpuspec33", nodes="all").machines) == 1523
    with pytest.raises(TraceError) as e:
        load_openb(workload="multigpu20")
    assert e.value.line == 1 and "creation_time" in e.value.message and "multigpu" in e.value.message


@pytest.mark.parametrize("case, line, expected", [
    ("a non-numeric creation time", "openb-pod-0001,6000,12288,1,460,,LS,Running,soon,12902960,0", "creation_time"),
    ("an unknown qos", "openb-pod-0001,6000,12288,1,460,,Gold,Running,0,12902960,0", "qos"),
    ("a fractional cpu_milli", "openb-pod-0001,6000.5,12288,1,460,,LS,Running,0,12902960,0", "cpu_milli"),
    ("a deletion before the creation", "openb-pod-0001,6000,12288,1,460,,LS,Running,50,10,0", "deletion_time"),
    ("a missing field", "openb-pod-0001,6000,12288,1,460,,LS,Running,0", "fields"),
])
def test_a_bad_pod_row_names_the_file_its_line_and_the_expected_column(tmp_path, head, case, line, expected):
    head(CSV / "openb_node_list_gpu_node.csv", tmp_path / "openb_node_list_gpu_node.csv", 5)
    pods = head(CSV / POD_FILE, tmp_path / POD_FILE, 5, edit={3: line})
    with pytest.raises(TraceError) as e:
        load_openb(tmp_path)
    assert (e.value.path, e.value.line) == (str(pods), 3) and expected in e.value.message
    assert str(e.value).startswith(f"{pods}:3: ")


def test_a_missing_pod_list_or_node_list_is_named(tmp_path, head):
    with pytest.raises(TraceError, match="openb_pod_list_default.csv"):
        load_openb(tmp_path)
    head(CSV / POD_FILE, tmp_path / POD_FILE, 5)
    with pytest.raises(TraceError, match="openb_node_list_gpu_node.csv"):
        load_openb(tmp_path)
