"""Device control on cgroup v2: a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program attached to a cgroup.

cgroup v2 has no ``devices.allow``/``devices.deny`` files; the kernel asks the BPF programs
attached to a cgroup (and, with ``BPF_F_ALLOW_MULTI``, to its ancestors) whether a member may
open or mknod a device. ``attach_fence(cgroup_dir, major, allowed)`` loads a tiny program through
the bpf(2) syscall and attaches it to the cgroup: character devices of ``major`` are refused
(``EPERM``) except the minors in ``allowed``; every other device is left alone. The attachment
holds the program, which goes away with the cgroup.

The program (``program()``), as the verifier sees it::

    r2 = *(u32 *)(r1 + 0)        ; access_type: (access << 16) | device type
    w2 &= 0xffff                 ; the device type
    if r2 != CHAR goto allow
    r3 = *(u32 *)(r1 + 4)        ; major
    if r3 != MAJOR goto allow
    r4 = *(u32 *)(r1 + 8)        ; minor
    if r4 == MINOR_i goto allow  ; one per allowed minor
    r0 = 0 ; exit                ; refused
  allow:
    r0 = 1 ; exit

Loading needs ``CAP_BPF`` (or ``CAP_SYS_ADMIN``) and attaching needs write access to the cgroup;
a refusal raises :class:`BpfError` with the kernel's reason (and the verifier's log).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import struct
from collections.abc import Iterable

# linux/bpf.h
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 2
BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351}
NVIDIA_MAJOR = 195

_ATTR_SIZE = 128  # zero-filled beyond the fields we set, as the kernel requires
_LOG_SIZE = 1 << 16


class BpfError(OSError):
    """The kernel refused to load or attach the program; the message says which and why."""


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _ldx_w(dst: int, src: int, off: int) -> bytes:
    return _insn(0x61, dst, src, off)  # BPF_LDX | BPF_MEM | BPF_W


def _jne(dst: int, imm: int, off: int) -> bytes:
    return _insn(0x55, dst, 0, off, imm)  # BPF_JMP | BPF_JNE | BPF_K


def _jeq(dst: int, imm: int, off: int) -> bytes:
    return _insn(0x15, dst, 0, off, imm)  # BPF_JMP | BPF_JEQ | BPF_K


def _mov(dst: int, imm: int) -> bytes:
    return _insn(0xB7, dst, 0, 0, imm)  # BPF_ALU64 | BPF_MOV | BPF_K


EXIT = _insn(0x95)  # BPF_JMP | BPF_EXIT
AND32_TYPE = _insn(0x54, 2, 0, 0, 0xFFFF)  # BPF_ALU | BPF_AND | BPF_K: w2 &= 0xffff


def program(major: int, allowed: Iterable[int]) -> list[bytes]:
    """The instructions: refuse char devices ``major:*`` but ``allowed`` minors, allow the rest."""
    minors = sorted(set(allowed))
    if not 0 <= major < 1 << 12 or any(not 0 <= m < 1 << 20 for m in minors):
        raise ValueError(f"device numbers out of range: major {major}, minors {minors}")
    n = len(minors)
    # indices: 0 ldx, 1 and, 2 jne, 3 ldx, 4 jne, 5 ldx, 6..6+n-1 jeq, 6+n mov0, 7+n exit, 8+n allow
    allow = 8 + n
    insns = [_ldx_w(2, 1, 0), AND32_TYPE, _jne(2, BPF_DEVCG_DEV_CHAR, allow - 3),
             _ldx_w(3, 1, 4), _jne(3, major, allow - 5), _ldx_w(4, 1, 8)]
    for i, minor in enumerate(minors):
        insns.append(_jeq(4, minor, allow - (6 + i) - 1))
    insns += [_mov(0, 0), EXIT, _mov(0, 1), EXIT]
    return insns


def _syscall() -> tuple[ctypes.CDLL, int]:
    number = SYS_BPF.get(platform.machine())
    if number is None:
        raise BpfError(errno.ENOSYS, f"bpf(2): no syscall number known for {platform.machine()}")
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True), number


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    libc, number = _syscall()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


def load(major: int, allowed: Iterable[int]) -> int:
    """Load the program; its file descriptor (the caller closes it)."""
    code = b"".join(program(major, allowed))
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    log_buf = ctypes.create_string_buffer(_LOG_SIZE)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                     ctypes.addressof(insns), ctypes.addressof(license_), 1, _LOG_SIZE, ctypes.addressof(log_buf))
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        verifier = log_buf.value.decode(errors="replace").strip()
        raise BpfError(e.errno, f"bpf(BPF_PROG_LOAD) of a device program: {e.strerror}"
                       + (f" (verifier: {verifier})" if verifier else "")) from None


def attach(cgroup_dir: os.PathLike | str, prog_fd: int) -> None:
    """Attach ``prog_fd`` to the cgroup ``cgroup_dir`` (beside its ancestors' programs)."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for flags in (BPF_F_ALLOW_MULTI, 0):  # 0: kernels or parents that refuse multi attachments
            attr = ctypes.create_string_buffer(_ATTR_SIZE)
            struct.pack_into("<IIII", attr, 0, fd, prog_fd, BPF_CGROUP_DEVICE, flags)
            try:
                _bpf(BPF_PROG_ATTACH, attr)
                return
            except OSError as e:
                error = e
                if e.errno not in (errno.EINVAL, errno.EPERM) or flags == 0:
                    break
        raise BpfError(error.errno, f"bpf(BPF_PROG_ATTACH) to {cgroup_dir}: {error.strerror}")
    finally:
        os.close(fd)


def attach_fence(cgroup_dir: os.PathLike | str, major: int, allowed: Iterable[int]) -> None:
    """Members of ``cgroup_dir`` may open char devices ``major:m`` only for ``m`` in ``allowed``."""
    prog_fd = load(major, allowed)
    try:
        attach(cgroup_dir, prog_fd)
    finally:
        os.close(prog_fd)
