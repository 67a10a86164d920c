"""Azure V1 VM arrivals: one job per VM, times drawn inside their bins with the seed."""

import shutil
from pathlib import Path

import pytest

from corral.sim.trace import TraceError
from corral.sim.traces.azure import load_azure

SOURCE = Path(__file__).resolve().parents[3].parent / "shared" / "traces" / "azure-v1-vm-flavors-huawei"
DURATIONS = "v1.test.c2591400.txt"
pytestmark = pytest.mark.skipif(not (SOURCE / "traces" / "v1.test.txt").exists(),
                                reason=f"Azure flavour traces not found at {SOURCE}")


@pytest.fixture
def sample(tmp_path, head):
    """maps/ and the first 4 bins (2,100,000 s .. 2,100,900 s) of the test split and its durations."""
    shutil.copytree(SOURCE / "maps", tmp_path / "maps")
    head(SOURCE / "traces" / DURATIONS, tmp_path / "traces" / DURATIONS, 4)
    return head(SOURCE / "traces" / "v1.test.txt", tmp_path / "traces" / "v1.test.txt", 4)


def vms(path: Path) -> list[tuple[str, str]]:
    """(flavour, duration) per VM, in file order."""
    out = []
    durations = path.with_name(DURATIONS).read_text().splitlines()
    for a, b in zip(path.read_text().splitlines(), durations):
        pairs = zip(a.split(" ", 1)[1].split(","), b.split(" ", 1)[1].split(","))
        out += [(x, y) for x, y in pairs if x not in ("|", "")]
    return out


def test_a_sample_gives_one_job_per_vm_with_times_inside_their_bins(sample, valid):
    trace = valid(load_azure(sample.parent.parent))
    expected = vms(sample)
    assert len(trace.jobs) == trace.task_count() == len(expected)
    jobs = sorted(trace.jobs, key=lambda j: j.name)  # vm-<n> numbers the VMs in file order
    for job, (flavour, duration) in zip(jobs, expected):
        if flavour == "b":
            assert (job.cpu, job.memory) == (1000, round(1.75 * 2**30))
        if duration[0] == "C":
            assert job.duration is None
        elif duration == "U13":  # bin 13: 3,900 .. 7,500 s
            assert 3900 <= job.duration < 7500
        elif duration == "U0":
            assert 0 <= job.duration < 300
    first_bin = [j for j, _ in zip(jobs, expected)][:3]  # "m,m,m,|" - one tenant's batch in bin 1
    assert len({(j.arrival, j.user) for j in first_bin}) == 1 and 0 <= first_bin[0].arrival < 300
    assert all(0 <= j.arrival < 4 * 300 for j in trace.jobs)
    assert all(j.priority == 9 and j.appclass == "latency-sensitive" for j in trace.jobs)
    assert trace.machines and all(m.cpu == 64000 for m in trace.machines)


def test_the_same_seed_gives_the_same_trace_and_another_seed_other_times(sample):
    a, b, c = (load_azure(sample, seed=s) for s in (1, 1, 2))
    assert a.jobs == b.jobs and a.machines == b.machines
    assert [j.arrival for j in a.jobs] != [j.arrival for j in c.jobs]


def test_the_default_file_is_the_test_split_and_hours_keeps_its_first_hours():
    trace = load_azure(hours=1)
    assert "v1.test.txt" in trace.source and DURATIONS in trace.source
    assert trace.jobs and max(j.arrival for j in trace.jobs) < 3600


@pytest.mark.parametrize("case, flavours, durations, bad_file, expected", [
    ("an unknown duration mark", None, "2100300 X3,U1", DURATIONS, "U<bin> or C<bin>"),
    ("an unknown flavour", "2100300 z,g", None, "v1.test.txt", "flavour letter"),
    ("a different bin time", None, "2100299 U1,U1", DURATIONS, "expected time 2100300"),
    ("fewer durations than VMs", "2100300 g,g,g", "2100300 U1,U1", DURATIONS, "expected 3 entries"),
])
def test_a_bad_line_names_the_file_its_line_and_the_expected_thing(sample, case, flavours, durations, bad_file,
                                                                     expected):
    for name, text in ((sample.name, flavours), (DURATIONS, durations)):
        path = sample.with_name(name)
        lines = path.read_text().splitlines()
        lines[1] = text or ("2100300 g,g" if name == sample.name else "2100300 U1,U1")
        path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError) as e:
        load_azure(sample)
    assert (e.value.path, e.value.line) == (str(sample.with_name(bad_file)), 2) and expected in e.value.message


def test_a_duration_trace_shorter_than_its_flavour_trace_is_refused_at_its_end(sample):
    durations = sample.with_name(DURATIONS)
    durations.write_text("\n".join(durations.read_text().splitlines()[:3]) + "\n")
    with pytest.raises(TraceError) as e:
        load_azure(sample)
    assert (e.value.path, e.value.line) == (str(durations), 4) and "as many lines as v1.test.txt" in e.value.message


def test_a_flavour_trace_without_its_duration_trace_or_maps_is_refused_naming_what_is_missing(sample):
    sample.with_name(DURATIONS).unlink()
    with pytest.raises(TraceError, match="v1.test.c<censor>.txt"):
        load_azure(sample)
    shutil.rmtree(sample.parent.parent / "maps")
    with pytest.raises(TraceError, match="flav_map.txt"):
        load_azure(sample)
