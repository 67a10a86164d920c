"""The openb loader: counts of the default workload, units, GPU shares and model constraints."""

from pathlib import Path

import pytest

from corral.sim.openb.loader import (
    MiB, WorkloadError, default_trace_dir, load_nodes, load_pods, normalise_workload, workload_names,
)

TRACES = Path(__file__).resolve().parents[3].parent / "shared" / "traces" / "alibaba-gpu-v2023" / "csv"
needs_traces = pytest.mark.skipif(
    not (TRACES / "openb_node_list_gpu_node.csv").exists(),
    reason=f"openb traces not found at {TRACES} (../shared/traces beside the repository)",
)


def test_the_default_trace_folder_is_the_shared_traces_folder_beside_the_repository():
    assert default_trace_dir() == TRACES


@needs_traces
def test_the_default_workload_loads_1213_nodes_with_6212_gpus_and_8152_pods():
    nodes = load_nodes(TRACES)
    pods = load_pods(TRACES, "default")
    assert len(nodes) == 1213
    assert sum(m.capacity.gpu for m in nodes) == 6212
    assert sum(m.capacity.cpu for m in nodes) == 107_018_000
    assert len(pods) == 8152
    assert [p.name for p in pods] == sorted(p.name for p in pods)


@needs_traces
@pytest.mark.parametrize("name, short", [
    ("the bare name is accepted", "default"),
    ("the file-name prefix is accepted", "openb_pod_list_default"),
    ("a variant without the long columns is accepted", "multigpu50"),
])
def test_workload_names_are_accepted_with_or_without_the_prefix(name, short):
    assert normalise_workload(short, TRACES) == short.removeprefix("openb_pod_list_")


@needs_traces
def test_an_unknown_workload_is_an_error_that_lists_the_known_ones():
    with pytest.raises(WorkloadError, match="default"):
        normalise_workload("nosuch", TRACES)
    assert len(workload_names(TRACES)) == 24


@needs_traces
@pytest.mark.parametrize("case, pick, expect", [
    ("a pod sharing one GPU keeps its per-GPU share",
     lambda p: p.num_gpu == 1 and p.gpu_milli < 1000, lambda p: p.request.is_gpu_share),
    ("a multi-GPU pod asks for whole GPUs",
     lambda p: p.num_gpu > 1, lambda p: p.gpu_milli == 1000 and p.request.resources.gpu_total_milli == 1000 * p.num_gpu),
    ("a CPU-only pod asks for no GPU", lambda p: p.num_gpu == 0, lambda p: p.request.gpu == 0),
    ("memory is read in MiB and kept in bytes",
     lambda p: True, lambda p: p.request.resources.memory == p.memory_mib * MiB),
])
def test_pod_resources_follow_the_protocol_units(case, pick, expect):
    pods = [p for p in load_pods(TRACES, "default") if pick(p)]
    assert pods and all(expect(p) for p in pods)


@needs_traces
def test_a_gpu_spec_becomes_the_allowed_gpu_models_of_the_request():
    pods = [p for p in load_pods(TRACES, "gpuspec33") if p.models]
    assert pods
    assert all(p.request.resources.gpu_models == p.models and all(p.models) for p in pods)


def test_pods_of_the_same_shape_share_one_request_object(tmp_path):
    (tmp_path / "openb_pod_list_tiny.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
        "p2,4000,1024,1,500,V100M16|\np1,4000,1024,1,500,V100M16|\np0,0,10,2,1200,\n"
    )
    pods = load_pods(tmp_path, "tiny")
    assert [p.name for p in pods] == ["p0", "p1", "p2"]
    assert pods[1].request is pods[2].request
    assert pods[1].models == ("V100M16",)
    assert (pods[0].cpu, pods[0].gpu_milli, pods[0].num_gpu) == (100, 1000, 2)  # non-zero cpu, share clipped
