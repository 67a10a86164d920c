"""``corral agent --token-file``: the token from a file, never from the command line."""

from __future__ import annotations

import pytest

from corral.cli.agent import read_token_file


def test_the_token_is_the_files_one_word(tmp_path):
    (tmp_path / "t").write_text("  s3cr3t\n")
    assert read_token_file(tmp_path / "t") == "s3cr3t"


@pytest.mark.parametrize("content,message", [("", "expected one token"), ("a b\n", "expected one token")])
def test_an_empty_or_two_word_file_is_refused(tmp_path, content, message):
    (tmp_path / "t").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_token_file(tmp_path / "t")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"--token-file: cannot read .*/nope: No such file"):
        read_token_file(tmp_path / "nope")
