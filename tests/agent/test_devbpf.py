"""The cgroup v2 device fence: a BPF_PROG_TYPE_CGROUP_DEVICE program loaded with bpf(2) and
attached to a real cgroup refuses what it should and nothing else.

The program's logic is checked everywhere by running its instructions through a small
interpreter of the five opcodes it uses; the kernel test loads and attaches it for real (it
fences /dev/null, major 1 minor 3, and checks a process in the cgroup gets EPERM opening it while
/dev/zero still opens) and skips, saying why, where the kernel refuses (no CAP_BPF, no cgroup v2).
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
import uuid

import pytest

from corral.agent import cgroups, devbpf


def run(insns: list[bytes], access_type: int, major: int, minor: int) -> int:
    """Interpret the program over one device access (only the opcodes program() emits)."""
    ctx = {0: access_type, 4: major, 8: minor}
    regs = [0] * 11
    pc = 0
    for _ in range(1000):
        code, regs_byte, off, imm = struct.unpack("<BBhi", insns[pc])
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == 0x61:
            assert src == 1, "only the context is read"
            regs[dst] = ctx[off]
        elif code == 0x54:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("the program did not exit")


READ = 2 << 16  # BPF_DEVCG_ACC_READ


@pytest.mark.parametrize("case, access, major, minor, allowed, expected", [
    ("an assigned GPU's node opens", devbpf.BPF_DEVCG_DEV_CHAR, 195, 1, (1, 255), 1),
    ("another GPU's node is refused", devbpf.BPF_DEVCG_DEV_CHAR, 195, 0, (1, 255), 0),
    ("the control node opens beside an assigned GPU", devbpf.BPF_DEVCG_DEV_CHAR, 195, 255, (1, 255), 1),
    ("with no GPU every node of the major is refused", devbpf.BPF_DEVCG_DEV_CHAR, 195, 255, (), 0),
    ("a char device of another major opens", devbpf.BPF_DEVCG_DEV_CHAR, 1, 3, (), 1),
    ("a block device with the same numbers opens", devbpf.BPF_DEVCG_DEV_BLOCK, 195, 0, (), 1),
])
def test_the_program_refuses_exactly_the_fenced_major_but_its_allowed_minors(case, access, major, minor, allowed,
                                                                             expected):
    assert run(devbpf.program(195, allowed), READ | access, major, minor) == expected, case


def test_device_numbers_out_of_range_are_refused_before_the_kernel_sees_them():
    with pytest.raises(ValueError, match="out of range"):
        devbpf.program(1 << 12, ())


OPEN_BOTH = """
import os
for path in ("/dev/null", "/dev/zero"):
    try:
        os.close(os.open(path, os.O_RDONLY))
        print(path, "ok")
    except OSError as e:
        print(path, e.errno)
"""


@pytest.fixture
def v2_cgroup():
    mounts = cgroups.discover()
    if mounts.v2 is None:
        pytest.skip("no cgroup v2 mount on this machine")
    directory = mounts.v2 / f"corral-test-bpf-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        directory.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create a cgroup under {mounts.v2}: {e}")
    yield directory
    for pid in cgroups.procs(directory):
        os.kill(pid, 9)
    assert cgroups.rmdir(directory), f"could not remove {directory}"


def test_a_process_in_a_fenced_cgroup_cannot_open_the_fenced_device_but_opens_others(v2_cgroup):
    try:
        devbpf.attach_fence(v2_cgroup, 1, [5])  # major 1: /dev/null is 1:3 (fenced), /dev/zero 1:5 (allowed)
    except devbpf.BpfError as e:
        pytest.skip(f"the kernel refused the device program: {e}")
    target = str(v2_cgroup / "cgroup.procs")

    def join() -> None:
        fd = os.open(target, os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)

    inside = subprocess.run([sys.executable, "-c", OPEN_BOTH], preexec_fn=join, capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    outside = subprocess.run([sys.executable, "-c", OPEN_BOTH], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    assert inside.stdout.split("\n")[:2] == ["/dev/null " + str(errno.EPERM), "/dev/zero ok"], inside
    assert outside.stdout.split("\n")[:2] == ["/dev/null ok", "/dev/zero ok"], outside  # nobody else fenced
