import pytest

from corral.model.spec import SpecError, load_job_spec_text

GOOD = """
name: web
user: alice
priority: 10
appclass: latency-sensitive
tasks: 3
resources: {cpu: 1.5, memory: 512Mi, disk: 1Gi}
constraints: ["rack != r7"]
"""


def test_a_good_spec_reads_quantities_in_corral_units():
    spec = load_job_spec_text(GOOD)
    assert spec.resources.cpu == 1500
    assert spec.resources.memory == 512 * 2**20
    assert spec.resources.disk == 2**30
    assert [str(c) for c in spec.hard_constraints()] == ["rack!=r7"]


@pytest.mark.parametrize(
    "case, text, field, words",
    [
        ("a memory quantity with an unknown unit names the field", "name: a\nuser: b\nresources: {cpu: 1, memory: 12 parsecs}", "resources.memory", "512Mi"),
        ("a cpu that is not a number names the field", "name: a\nuser: b\nresources: {cpu: lots, memory: 1Gi}", "resources.cpu", "millicores"),
        ("a priority above 11 is out of range", "name: a\nuser: b\npriority: 12\nresources: {cpu: 1, memory: 1Gi}", "priority", "11"),
        ("an unknown field is refused rather than ignored", "name: a\nuser: b\ncolour: red\nresources: {cpu: 1, memory: 1Gi}", "colour", "unknown field"),
        ("a missing resources block is reported", "name: a\nuser: b", "resources", "missing"),
        ("a fractional gpu share on two gpus is refused", "name: a\nuser: b\nresources: {cpu: 1, memory: 1Gi, gpu: 2, gpu_milli: 500}", "resources", "gpu: 1"),
        ("a constraint with an unknown operator is refused", "name: a\nuser: b\nresources: {cpu: 1, memory: 1Gi}\nconstraints: ['rack ~ r1']", "constraints", "op one of"),
        ("an unknown appclass lists the choices", "name: a\nuser: b\nappclass: fast\nresources: {cpu: 1, memory: 1Gi}", "appclass", "latency-sensitive"),
        ("a spec that is not a mapping says so", "[1, 2]", "spec", "mapping"),
        ("text that is not YAML says so", "name: [unclosed", "spec", "YAML"),
    ],
)
def test_a_bad_spec_names_the_field_and_what_was_expected(case, text, field, words):
    with pytest.raises(SpecError) as caught:
        load_job_spec_text(text)
    fields = [f for f, _ in caught.value.errors]
    assert field in fields, caught.value
    assert words in str(caught.value)
