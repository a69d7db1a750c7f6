"""The suite's temporary files in RAM (tests/support/ram_temp.py, ADR 0018 point 14): only on a tmpfs with room,
inherited by the workers, removed after a run that passed and kept after one that failed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.support import ram_temp


def _mounts(tmp_path: Path, fs_type: str) -> Path:
    table = tmp_path / "mounts"
    table.write_text(f"proc /proc proc rw 0 0\nnone {tmp_path} {fs_type} rw,relatime 0 0\n")
    return table


def test_only_a_tmpfs_with_room_qualifies(tmp_path):
    assert ram_temp.ram_filesystem(tmp_path, _mounts(tmp_path, "tmpfs"), min_free=1)
    assert not ram_temp.ram_filesystem(tmp_path, _mounts(tmp_path, "ext4"), min_free=1)  # a disk
    assert not ram_temp.ram_filesystem(tmp_path, _mounts(tmp_path, "tmpfs"), min_free=1 << 60)  # a container's 64 MB
    assert not ram_temp.ram_filesystem(tmp_path / "absent", _mounts(tmp_path, "tmpfs"), min_free=1)


def test_a_worker_keeps_what_its_controller_chose():
    environ = {ram_temp.ENV: "/dev/shm/steward-tests-x", "TMPDIR": "/dev/shm/steward-tests-x"}
    assert ram_temp.claim(environ) is None
    assert environ == {ram_temp.ENV: "/dev/shm/steward-tests-x", "TMPDIR": "/dev/shm/steward-tests-x"}


def test_a_passed_run_frees_the_ram_and_a_failed_one_keeps_its_files(tmp_path):
    passed, failed = tmp_path / "passed", tmp_path / "failed"
    for root in (passed, failed):
        (root / "home").mkdir(parents=True)
        (root / "home" / "mlflow.db").write_bytes(b"x" * 1000)
    assert ram_temp.release(passed, passed=True) is None
    assert not passed.exists()
    message = ram_temp.release(failed, passed=False)
    assert (failed / "home" / "mlflow.db").exists()
    assert message is not None and str(failed) in message


def test_this_run_writes_where_it_said(tmp_path):
    """When this run claimed a folder in RAM, this test's own files and every subprocess's temporary files
    (TMPDIR) are in it; when it did not, TMPDIR is not one of ours."""
    root = os.environ.get(ram_temp.ENV)
    if root is None:  # no RAM filesystem with room on this machine: the default folder, untouched
        assert "steward-tests-" not in os.environ.get("TMPDIR", "")
        return
    assert tmp_path.is_relative_to(root)
    assert Path(tempfile.gettempdir()) == Path(root) and os.environ["TMPDIR"] == root
    assert Path(root).stat().st_mode & 0o7777 == 0o1777  # as /tmp: another user's process can work below it
