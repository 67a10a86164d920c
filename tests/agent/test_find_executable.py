"""A task is started through a shell that joins its cgroups; it must still fail to start the way a
direct exec would (an OSError naming the command), not start and exit 127."""

from __future__ import annotations

import os
import stat

import pytest

from corral.agent.runner import find_executable, os_error_text


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "bin" / "data").write_text("not a program")
    (tmp_path / "work").mkdir()
    local = tmp_path / "work" / "run.sh"
    local.write_text("#!/bin/sh\n")
    local.chmod(local.stat().st_mode | stat.S_IXUSR)
    return tmp_path


CASES = [
    ("a command on the PATH is found there", "tool", "bin/tool", None),
    ("a relative path is looked up in the task's working directory", "./run.sh", "work/run.sh", None),
    ("an absolute path is taken as it is", "/bin/sh", "/bin/sh", None),
    ("a command on no PATH entry is no such file", "nosuchbinary", None, "No such file or directory: 'nosuchbinary'"),
    ("a file that is not executable is permission denied", "data", None, "Permission denied: 'data'"),
]


@pytest.mark.parametrize("name,command,where,error", CASES, ids=[c[0] for c in CASES])
def test_a_command_is_found_as_exec_would_or_refused_with_execs_error(tree, name, command, where, error):
    path = os.pathsep.join([str(tree / "nothing-here"), str(tree / "bin")])
    if error is None:
        found = find_executable(command, path, str(tree / "work"))
        assert os.path.normpath(found) == os.path.normpath(where if where.startswith("/") else str(tree / where))
    else:
        with pytest.raises(OSError) as caught:
            find_executable(command, path, str(tree / "work"))
        assert os_error_text(caught.value) == error
