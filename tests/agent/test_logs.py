"""Task logs: size-based rotation keeping N files, tails across rotated files, real task output."""

from __future__ import annotations

import pytest

from corral.agent import supervisor as sv
from corral.agent.launch import parse_launch
from corral.agent.logs import RotatingFile, rotated, stream_path, tail

from .conftest import wait_until


@pytest.mark.parametrize(
    "case, max_bytes, keep, writes, want_files",
    [
        ("writes under the limit stay in one file", 100, 2, [b"a" * 40, b"b" * 40], {"": 80}),
        ("crossing the limit rotates the full file to .1", 100, 2, [b"a" * 60, b"b" * 60], {"": 20, ".1": 100}),
        ("only keep rotated files are kept, the oldest is deleted", 10, 2, [b"x" * 55], {"": 5, ".1": 10, ".2": 10}),
        ("keep 0 keeps only the current file", 10, 0, [b"x" * 25], {"": 5}),
    ],
)
def test_rotation(case, max_bytes, keep, writes, want_files, tmp_path):
    sink = RotatingFile(tmp_path / "stdout.log", max_bytes=max_bytes, keep=keep)
    for data in writes:
        sink.write(data)
    sink.close()
    files = {p.name.removeprefix("stdout.log"): p.stat().st_size for p in tmp_path.iterdir()}
    assert files == want_files


def test_tail_reads_back_into_rotated_files(tmp_path):
    sink = RotatingFile(tmp_path / "stdout.log", max_bytes=20, keep=3)
    for i in range(20):
        sink.write(f"line {i:02d}\n".encode())  # 8 bytes a line, 160 in all
    sink.close()
    assert tail(tmp_path, "stdout", 4, keep=3) == "line 16\nline 17\nline 18\nline 19\n"
    everything = tail(tmp_path, "stdout", 100, keep=3)
    assert everything.endswith("line 19\n") and len(everything) <= 80
    assert "line 00" not in everything, "older lines should have been rotated away"


def test_a_chatty_task_s_log_is_rotated_and_bounded(make_runner):
    runner = make_runner(log_max_bytes=4096, log_keep=2)
    script = "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done"
    runner.submit(sv.Launch(parse_launch({"task_id": "chatty", "command": "sh", "args": ["-c", script]})))
    wait_until(lambda: runner.status("chatty")["state"] == "finished", 10)
    path = stream_path(runner.tasks_dir / "chatty", "stdout")
    wait_until(lambda: path.exists() and tail(path.parent, "stdout", 1, keep=2) == "line 1999\n", 5,
               "the last line in the log")
    assert rotated(path, 1).stat().st_size == 4096 and rotated(path, 2).exists()
    assert not rotated(path, 3).exists(), "more than keep rotated files"
