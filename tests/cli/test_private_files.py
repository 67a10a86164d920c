"""Files holding secrets are created mode 0600, whatever the umask: tokens files and the SQLite store."""

from __future__ import annotations

import os
import stat

import pytest

from corral.cli.master import ensure_tokens
from corral.cli.up import ensure_cell_tokens
from corral.master.auth import Tokens
from corral.model.private import touch_private, write_private
from corral.store.sqlite import SqliteStore


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    old = os.umask(0o002)  # the most permissive common umask: files would be group-writable, world-readable
    try:
        yield
    finally:
        os.umask(old)


def test_the_master_creates_its_tokens_file_0600_with_an_explicitly_unbound_agent_token(tmp_path):
    ensure_tokens(tmp_path / "tokens.yaml")
    assert mode(tmp_path / "tokens.yaml") == 0o600
    agents = [p for p in Tokens.load(tmp_path / "tokens.yaml").table.values() if p.role == "agent"]
    assert [p.machine for p in agents] == ["*"]


def test_a_local_cell_binds_each_agent_token_to_its_machine_and_upgrades_an_old_file(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text("old-m1: {user: agent-m1, role: agent}\n")  # written by a corral without bindings
    admin, tokens = ensure_cell_tokens(path, "me", ["m1", "m2"])
    assert tokens["m1"] == "old-m1" and mode(path) == 0o600
    table = Tokens.load(path)
    assert {t: table.lookup(t).machine for t in tokens.values()} == {"old-m1": "m1", tokens["m2"]: "m2"}
    assert table.lookup(admin).admin


def test_the_sqlite_store_and_its_log_files_are_0600(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    try:
        store.append([{"type": "x", "seq": 1}]).result(5)
        for name in os.listdir(tmp_path):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        store.close()


def test_write_private_replaces_a_file_atomically_and_touch_keeps_an_existing_one(tmp_path):
    path = tmp_path / "f"
    write_private(path, "one")
    write_private(path, "two")
    assert path.read_text() == "two" and mode(path) == 0o600 and os.listdir(tmp_path) == ["f"]
    touch_private(path)
    assert path.read_text() == "two"
