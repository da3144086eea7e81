"""Run-directory files are replaced atomically and get the user's umask, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest

from ehrbench.atomic import atomic_open


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_file_gets_permissions_of_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    target = tmp_path / "leaderboard.csv"
    with atomic_open(target) as fh:
        fh.write("generator,rank\n")
    assert stat.S_IMODE(target.stat().st_mode) == expected
    assert target.read_text() == "generator,rank\n"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]
