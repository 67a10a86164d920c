"""Spec files that would hurt a naive reader are refused in one line, in bounded time and memory."""

from __future__ import annotations

import pytest

from corral.model.specfile import MAX_BYTES, MAX_DEPTH, MAX_NODES, SpecFileError, load_spec_bytes, load_spec_file

LAUGHS = "\n".join(["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                   + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)])

CASES = [
    ("a NaN cpu names the field", b"name: x\nresources: {cpu: .nan, memory: 1Gi}\n",
     "spec: resources.cpu: expected a finite number, got nan"),
    ("an infinite cpu names the field", b"name: x\nresources: {cpu: .inf, memory: 1Gi}\n",
     "spec: resources.cpu: expected a finite number, got inf"),
    ("a NaN in a list names its index", b"args: [1, -.inf]\n", "spec: args[1]: expected a finite number, got -inf"),
    ("invalid UTF-8 names the byte and where", b"name: x\xff\n",
     "spec: not UTF-8 text (invalid byte 0xff at offset 7)"),
    ("100,000 nested lists are refused before the composer recurses", b"[" * 100_000 + b"]" * 100_000,
     f"spec: nested deeper than {MAX_DEPTH} levels"),
    ("100,000 nested mappings too", b"{a: " * 100_000 + b"}" * 100_000, f"spec: nested deeper than {MAX_DEPTH} levels"),
    ("a billion laughs is refused before it expands", LAUGHS.encode(),
     f"spec: expands to more than {MAX_NODES} values (aliases of aliases?)"),
    ("a file over the master's limit is refused unread", b"#" * (MAX_BYTES + 1), f"larger than {MAX_BYTES} bytes"),
    ("bad YAML is one line", b"name: [x\n", "spec is not valid YAML: "),
]


@pytest.mark.parametrize("case,raw,message", CASES, ids=[c[0] for c in CASES])
def test_a_harmful_file_is_one_line_naming_the_problem(case, raw, message):
    with pytest.raises(SpecFileError) as e:
        load_spec_bytes(raw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_anchors_and_merge_keys_within_the_bounds_still_load():
    raw = b"base: &base {cpu: 1, memory: 1Gi}\nresources:\n  <<: *base\n  cpu: 2\nargs: [*base, *base]\n"
    data = load_spec_bytes(raw)
    assert data["resources"] == {"cpu": 2, "memory": "1Gi"} and data["args"] == [data["base"]] * 2


def test_a_plain_spec_loads_as_yaml_would(tmp_path):
    (tmp_path / "s.yaml").write_text("name: web\ntasks: 3\nresources: {cpu: 0.5, memory: 1Gi}\n")
    assert load_spec_file(tmp_path / "s.yaml") == {"name": "web", "tasks": 3,
                                                   "resources": {"cpu": 0.5, "memory": "1Gi"}}


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SpecFileError, match=r"cannot read .*/nope.yaml: No such file or directory"):
        load_spec_file(tmp_path / "nope.yaml")
