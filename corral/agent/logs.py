"""Task logs: each stream (stdout, stderr) goes to ``<dir>/<stream>.log`` with size-based rotation.

When a write would take the current file past ``max_bytes`` it is renamed
``.1`` (older ones shift to ``.2`` ... ``.keep``; the oldest is deleted), so a
stream never uses more than about ``(keep + 1) * max_bytes`` on disk. A
``LogPump`` (on a worker thread) copies a child's pipe into a ``RotatingFile`` until EOF.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

STREAMS = ("stdout", "stderr")


class RotatingFile:
    def __init__(self, path: Path, max_bytes: int = 10 * 2**20, keep: int = 3):
        if max_bytes < 1 or keep < 0:
            raise ValueError(f"need max_bytes >= 1 and keep >= 0, got {max_bytes}, {keep}")
        self.path, self.max_bytes, self.keep = Path(path), max_bytes, keep
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._file.closed:
                return
            while data:
                if self._size >= self.max_bytes:
                    self._rotate()
                room = self.max_bytes - self._size
                chunk, data = data[:room], data[room:]
                self._file.write(chunk)
                self._size += len(chunk)
            self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            oldest = rotated(self.path, self.keep)
            oldest.unlink(missing_ok=True)
            for i in range(self.keep - 1, 0, -1):
                src = rotated(self.path, i)
                if src.exists():
                    src.rename(rotated(self.path, i + 1))
            if self.path.exists():
                self.path.rename(rotated(self.path, 1))
        self._file = open(self.path, "ab")
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._file.close()


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def stream_path(directory: Path, stream: str) -> Path:
    return Path(directory) / f"{stream}.log"


class LogPump:
    """Copy everything from ``fd`` into ``sink`` until EOF, then close ``fd`` (``run``, on a
    thread of its own: corral.agent.workers)."""

    def __init__(self, fd: int, sink: RotatingFile, name: str):
        self.fd, self.sink, self.name = fd, sink, name

    def run(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.sink.write(data)
        finally:
            try:
                os.close(self.fd)
            except OSError:
                pass


def tail(directory: Path, stream: str, lines: int, keep: int = 3, max_read: int = 4 * 2**20) -> str:
    """The last ``lines`` lines of a stream, reading back into rotated files as needed."""
    path = stream_path(directory, stream)
    chunks: list[bytes] = []
    count, total = 0, 0
    for candidate in [path, *(rotated(path, i) for i in range(1, keep + 1))]:
        try:
            with open(candidate, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                take = min(size, max_read - total)
                f.seek(size - take)
                data = f.read(take)
        except OSError:
            continue
        chunks.insert(0, data)
        total += len(data)
        count += data.count(b"\n")
        if count > lines or total >= max_read:
            break
    text = b"".join(chunks).decode(errors="replace")
    parts = text.splitlines(keepends=True)
    return "".join(parts[-lines:]) if lines > 0 else ""
