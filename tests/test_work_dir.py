"""Checkouts left by a killed process are removed at start-up; a live process's never are."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from ghapp.worker.checkout import WorkDir

HOLD = """
import sys, time
from pathlib import Path
from ghapp.worker.checkout import WorkDir
path = WorkDir(Path(sys.argv[1])).open()
(path / "ghapp-checkout-x").mkdir()
(path / "ghapp-checkout-x" / "README.md").write_text("a checkout")
print(path, flush=True)
sys.stdin.read()  # hold the lock until told to stop, or killed
"""


def start_holder(root: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_a_killed_processs_checkouts_are_removed_and_a_live_ones_kept(tmp_path) -> None:
    root = tmp_path / "work"
    killed, killed_dir = start_holder(root)
    alive, alive_dir = start_holder(root)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert (killed_dir / "ghapp-checkout-x" / "README.md").exists()  # left behind

        mine = WorkDir(root)
        own = mine.open()
        assert not killed_dir.exists()
        assert (alive_dir / "ghapp-checkout-x" / "README.md").exists()
        assert own.exists() and own.parent == root
        assert sorted(p.name for p in root.iterdir()) == sorted([alive_dir.name, own.name])
        mine.close()
        assert not own.exists()  # a clean stop removes its own folder
    finally:
        alive.communicate("", timeout=30)


def test_a_folder_without_a_lock_file_is_removed(tmp_path) -> None:
    root = tmp_path / "work"
    stray = root / "123-abc"
    stray.mkdir(parents=True)
    removed = WorkDir(root).sweep()
    assert removed == [stray] and not stray.exists()


def test_a_folder_being_made_is_left_and_one_whose_maker_died_is_removed(tmp_path) -> None:
    root = tmp_path / "work"
    being_made = root / f"{WorkDir.BEING_MADE}abc"
    being_made.mkdir(parents=True)
    (being_made / "tmp1234").write_text("")  # its lock, not yet under the lock's name
    died = root / f"{WorkDir.BEING_MADE}def"
    died.mkdir()
    (died / WorkDir.LOCK).write_text("")  # locked once, by a process now gone
    assert WorkDir(root).sweep() == [died]
    assert being_made.exists() and not died.exists()


OPEN_MANY = """
import sys
from pathlib import Path
from ghapp.worker.checkout import WorkDir
sys.stdin.readline()  # all start together
for _ in range(40):
    work = WorkDir(Path(sys.argv[1]))
    path = work.open()  # another process's sweep must never take this folder
    assert (path / WorkDir.LOCK).exists(), path
    (path / "checkout").mkdir()
    work.close()
print("ok", flush=True)
"""


def test_processes_opening_and_sweeping_at_once_never_take_each_other_s_folder(
    tmp_path,
) -> None:
    """Several workers on one machine share the root: each one's start-up sweep runs while
    the others make their folders (a folder once appeared before its lock file did, and a
    sweep removed it)."""
    root = tmp_path / "work"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_MANY, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    answers = [process.communicate("go\n", timeout=120) for process in processes]
    assert [out.strip() for out, _ in answers] == ["ok"] * 6, [err for _, err in answers]
    assert [p.name for p in root.iterdir()] == []  # every folder was removed by its owner
