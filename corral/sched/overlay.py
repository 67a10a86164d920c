"""A snapshot's task -> machine map that reads the map of the view it was copied from (cellview.py)."""

from __future__ import annotations

_ABSENT = object()


class Overlay:
    """A snapshot's task -> machine map: the map of the view it was copied from, as it was then
    (``base``, never written), plus the snapshot's own placements and removals. The view it came
    from copies its map before writing while the snapshot is open (see CellView.release)."""

    __slots__ = ("base", "own", "gone")

    def __init__(self, base: dict[str, int]):
        self.base, self.own, self.gone = base, {}, set()

    def get(self, key: str, default=None):
        value = self.own.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        return default if key in self.gone else self.base.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.own or (key not in self.gone and key in self.base)

    def __getitem__(self, key: str) -> int:
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, machine: int) -> None:
        self.own[key] = machine

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.own.pop(key, None)
        if key in self.base:
            self.gone.add(key)

    def pop(self, key: str) -> int:
        value = self[key]
        del self[key]
        return value

    def __len__(self) -> int:
        return len(self.base) - len(self.gone) + sum(1 for k in self.own if k not in self.base or k in self.gone)

    def flatten(self) -> dict[str, int]:
        out = {k: v for k, v in self.base.items() if k not in self.gone} if self.gone else dict(self.base)
        out.update(self.own)
        return out
