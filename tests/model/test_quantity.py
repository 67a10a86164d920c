"""The one quantity parser: cpu, bytes, GPUs, resource mappings and machine capacity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from corral.agent.config import ConfigError, parse_capacity
from corral.agent.launch import LaunchError, parse_launch
from corral.master.quota import ConfigFileError, parse_vector
from corral.model.quantity import (QUOTA_BOUNDS, QuantityError, parse_bytes, parse_capacity_mapping, parse_cpu,
                                   parse_gpu_count, parse_gpu_milli, parse_resource_mapping)
from corral.model.spec import SpecError, parse_job_spec

GI = 2**30


@pytest.mark.parametrize("case, value, units, want", [
    ("a whole number of cores is read into millicores", 2, False, 2000),
    ("a fraction of a core is read into millicores", 1.5, False, 1500),
    ("a string of cores is read into millicores", "1.5", False, 1500),
    ("millicores with an m suffix are read as they are", "500m", False, 500),
    ("spaces around a quantity are allowed", " 250m ", False, 250),
    ("an exponent is allowed, as YAML leaves 1e3 a string", "1e3", False, 1_000_000),
    ("with units an integer is millicores", 1500, True, 1500),
    ("with units a string is still a quantity people type", "8", True, 8000),
    ("exactly 100,000 cores is within the bounds", 100_000, False, 100_000_000),
])
def test_cpu_quantities_are_read_into_millicores(case, value, units, want):
    assert parse_cpu(value, units=units) == want


@pytest.mark.parametrize("case, value, units, words", [
    ("a word is not a cpu quantity", "lots", False, "millicores like 500m"),
    ("a boolean is not a number of cores", True, False, "millicores like 500m"),
    ("a negative number of cores is refused", -1, False, "got -1"),
    ("NaN is refused", math.nan, False, "got nan"),
    ("infinity is refused", math.inf, False, "got inf"),
    ("the string inf is refused", "inf", False, "got 'inf'"),
    ("an integer too large for a float is refused, not an overflow", 10**400, False, "at most 100000 cores"),
    ("more than 100,000 cores is refused", 100_001, False, "expected at most 100000 cores, got 100001"),
    ("more than 100,000 cores as a string is refused", "100001", False, "at most 100000 cores"),
    ("with units a float is refused", 1.5, True, "expected an integer (millicores) or a quantity string"),
    ("with units a boolean is refused", False, True, "expected an integer (millicores)"),
    ("with units a negative integer is refused", -5, True, "got -5"),
    ("with units more than 100,000 cores of millicores is refused", 100_000_001, True, "at most 100000 cores"),
])
def test_bad_cpu_quantities_say_what_was_expected(case, value, units, words):
    with pytest.raises(QuantityError) as caught:
        parse_cpu(value, "resources.cpu", units=units)
    assert caught.value.field == "resources.cpu"
    assert words in caught.value.message
    assert str(caught.value).startswith("resources.cpu: ")


@pytest.mark.parametrize("case, value, units, want", [
    ("an integer is bytes", 1024, False, 1024),
    ("binary units are powers of two", "512Mi", False, 512 * 2**20),
    ("decimal units are powers of ten", "1.5G", False, 1_500_000_000),
    ("a lower-case k is a thousand", "100k", False, 100_000),
    ("a B suffix is bytes", "10B", False, 10),
    ("a float of bytes is rounded", 1.6, False, 2),
    ("with units an integer is bytes", 2**30, True, 2**30),
    ("with units a string is a quantity", "2Gi", True, 2 * GI),
    ("exactly 64 TiB is within the bounds", "64Ti", False, 2**46),
])
def test_byte_quantities_are_read_into_bytes(case, value, units, want):
    assert parse_bytes(value, units=units) == want


@pytest.mark.parametrize("case, value, units, words", [
    ("a unit nobody knows is refused with the known ones", "12 parsecs", False, "expected a byte quantity like 512Mi"),
    ("a two-letter unit nobody knows is named", "3Zi", False, "unknown unit 'Zi'"),
    ("a negative number of bytes is refused", -1, False, "non-negative"),
    ("a boolean is not bytes", True, False, "byte quantity"),
    ("NaN is refused", math.nan, False, "got nan"),
    ("infinity is refused", math.inf, False, "got inf"),
    ("a number that overflows a float in its unit is refused", "1e308Pi", False, "got '1e308Pi'"),
    ("more than 64 TiB is refused", "65Ti", False, "expected at most 64Ti, got '65Ti'"),
    ("with units a float is refused", 1.5, True, "expected an integer (bytes) or a quantity string"),
    ("a list is not bytes", [1], False, "got [1]"),
])
def test_bad_byte_quantities_say_what_was_expected(case, value, units, words):
    with pytest.raises(QuantityError) as caught:
        parse_bytes(value, "resources.memory", units=units)
    assert caught.value.field == "resources.memory"
    assert words in caught.value.message


@pytest.mark.parametrize("case, value, want", [
    ("an integer is a count of GPUs", 4, 4),
    ("a string of digits is a count of GPUs", "2", 2),
    ("64 GPUs is the most", 64, 64),
])
def test_gpu_counts_are_whole(case, value, want):
    assert parse_gpu_count(value) == want


@pytest.mark.parametrize("case, value", [
    ("a fraction of a GPU is not a count", 1.5),
    ("a boolean is not a count", True),
    ("a negative count is refused", -1),
    ("65 GPUs is too many", 65),
    ("a word is not a count", "two"),
])
def test_bad_gpu_counts_are_refused(case, value):
    with pytest.raises(QuantityError, match=r"gpu: expected a whole number of GPUs 0\.\.64"):
        parse_gpu_count(value, "gpu")


@pytest.mark.parametrize("case, value, want", [
    ("a fraction of a GPU is milli-GPU", 2.5, 2500),
    ("a whole number is whole GPUs", 2, 2000),
    ("a numeric string is read too", "0.5", 500),
])
def test_gpu_amounts_may_be_fractional(case, value, want):
    assert parse_gpu_milli(value) == want


@pytest.mark.parametrize("case, value", [
    ("NaN GPUs are refused", math.nan), ("a negative amount is refused", -0.5), ("a boolean is refused", True),
    ("an integer too large for a float is refused", 10**400),
])
def test_bad_gpu_amounts_are_refused(case, value):
    with pytest.raises(QuantityError, match="expected"):
        parse_gpu_milli(value)


@pytest.mark.parametrize("case, data, options, want, fields", [
    ("a quota mapping is read with fractional GPUs", {"cpu": 16, "memory": "64Gi", "disk": "1Ti", "gpu": 2.5},
     {"gpu": "milli", "bounds": QUOTA_BOUNDS}, {"cpu": 16000, "memory": 64 * GI, "disk": 2**40, "gpu": 2500}, []),
    ("a quota may exceed one machine's bounds", {"cpu": 200_000, "memory": "1Pi"},
     {"gpu": "milli", "bounds": QUOTA_BOUNDS}, {"cpu": 200_000_000, "memory": 2**50}, []),
    ("every bad entry is named, the good ones kept", {"cpu": "lots", "memory": "1Gi", "gpu": 1.5, "bogons": 3}, {},
     {"memory": GI}, ["q.cpu", "q.gpu", "q.bogons"]),
    ("unknown keys may be ignored", {"cpu": 1, "colour": "red"}, {"unknown": "ignore"}, {"cpu": 1000}, []),
    ("with units integers are millicores", {"cpu": 1500}, {"units": True}, {"cpu": 1500}, []),
    ("a mapping that is not one says so", [1, 2], {}, {}, ["q"]),
])
def test_resource_mappings_name_each_bad_entry(case, data, options, want, fields):
    values, errors = parse_resource_mapping(data, "q", **options)
    assert values == want
    assert [field for field, _ in errors] == fields


@pytest.mark.parametrize("case, capacity, want, fields", [
    ("integers are corral units", {"cpu": 8000, "memory": 16 * GI},
     {"cpu": 8000, "memory": 16 * GI, "disk": 0, "gpu": 0}, []),
    ("strings are quantities people type", {"cpu": "8", "memory": "16Gi", "disk": "1Ti", "gpu": 2},
     {"cpu": 8000, "memory": 16 * GI, "disk": 2**40, "gpu": 2}, []),
    ("unknown keys are ignored", {"cpu": 1, "memory": 1, "colour": "red"}, {"cpu": 1, "memory": 1, "disk": 0, "gpu": 0},
     []),
    ("a cpu that is not a quantity is named, and cpu is then missing", {"cpu": "lots", "memory": "8Gi"}, None,
     ["capacity.cpu", "capacity"]),
    ("a float of millicores is refused", {"cpu": 1.5, "memory": 1}, None, ["capacity.cpu", "capacity"]),
    ("a gpu count must be an integer", {"cpu": 1, "memory": 1, "gpu": "2"}, None, ["capacity.gpu"]),
    ("more than 64 GPUs is refused", {"cpu": 1, "memory": 1, "gpu": 65}, None, ["capacity.gpu"]),
    ("a boolean gpu is refused", {"cpu": 1, "memory": 1, "gpu": True}, None, ["capacity.gpu"]),
    ("zero memory is refused", {"cpu": 1}, None, ["capacity"]),
    ("more than 64 TiB of memory is refused", {"cpu": 1, "memory": 2**46 + 1}, None, ["capacity.memory"]),
    ("more than 100,000 cores is refused", {"cpu": "100001", "memory": 1}, None, ["capacity.cpu"]),
    ("a capacity that is not a mapping says so", "8 cores", None, ["capacity"]),
])
def test_capacity_mappings_follow_the_registration_rules(case, capacity, want, fields):
    values, errors = parse_capacity_mapping(capacity)
    assert [field for field, _ in errors] == fields, errors
    assert set(values) == {"cpu", "memory", "disk", "gpu"}
    if want is not None:
        assert values == want


def test_capacity_errors_keep_the_messages_registration_gave():
    _, errors = parse_capacity_mapping({"cpu": -1, "memory": 1, "gpu": 99})
    assert errors == [("capacity.cpu", "expected an integer (millicores) or a quantity string, got -1"),
                      ("capacity.gpu", "expected a whole number of GPUs 0..64, got 99"),
                      ("capacity", "expected cpu and memory greater than 0")]
    _, errors = parse_capacity_mapping({"cpu": 1, "memory": 2**50}, "machine.capacity")
    assert errors == [("machine.capacity.memory", "expected at most 64Ti, got 1125899906842624")]


@pytest.mark.parametrize("case, read, error, field", [
    ("the job spec names resources.cpu", lambda: parse_job_spec(
        {"name": "a", "user": "b", "resources": {"cpu": math.inf, "memory": "1Gi"}}), SpecError, "resources.cpu"),
    ("the job spec refuses more than 64 TiB", lambda: parse_job_spec(
        {"name": "a", "user": "b", "resources": {"cpu": 1, "memory": "65Ti"}}), SpecError, "resources.memory"),
    ("the job spec refuses a boolean gpu", lambda: parse_job_spec(
        {"name": "a", "user": "b", "resources": {"cpu": 1, "memory": "1Gi", "gpu": True}}), SpecError, "resources.gpu"),
    ("a launch refuses a float of millicores", lambda: parse_launch(
        {"task_id": "t", "command": "x", "resources": {"cpu": 1.5}}), LaunchError, "resources.cpu"),
    ("a launch refuses NaN bytes", lambda: parse_launch(
        {"task_id": "t", "command": "x", "resources": {"memory": math.nan}}), LaunchError, "resources.memory"),
    ("agent capacity names the dimension", lambda: parse_capacity("cpu=1,gpu=1.5"), ConfigError, "capacity.gpu"),
    ("a quota names user, band and dimension", lambda: parse_vector({"cpu": "nan"}, "alice.batch"), ConfigFileError,
     "alice.batch.cpu"),
])
def test_every_door_uses_the_one_parser_and_names_the_field(case, read, error, field):
    with pytest.raises(error) as caught:
        read()
    assert field in str(caught.value)


def test_a_launch_reads_millicores_and_quantities():
    launch = parse_launch({"task_id": "t", "command": "x", "resources": {"cpu": 1500, "memory": "256Mi", "gpu": "1"}})
    assert (launch.resources.cpu, launch.resources.memory, launch.resources.gpu) == (1500, 256 * 2**20, 1)


def test_a_quota_vector_holds_gpus_in_milli_gpu():
    assert parse_vector({"cpu": 16, "memory": "64Gi", "gpu": 2.5}, "q").tolist() == [16000, 64 * GI, 0, 2500]
    assert parse_vector({}, "q").dtype == np.int64
