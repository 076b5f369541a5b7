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
