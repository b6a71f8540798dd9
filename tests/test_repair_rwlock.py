"""scripts/repair_rwlock.py: a half-written .dvc/tmp/rwlock no longer blocks DVC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import copy_repository, load_script, run

repair_rwlock = load_script("repair_rwlock")

DVC_YAML = """\
stages:
  make:
    cmd: echo made > out.txt
    outs:
      - out.txt
"""


@pytest.fixture
def toy_repo(tmp_path: Path) -> Path:
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-qm", "toy"], tmp_path)
    return tmp_path


@pytest.mark.parametrize("content", ["", '{"write": {"/x": {"pid": 1, "c'])
def test_truncated_rwlock_blocks_dvc_until_repaired(toy_repo: Path, content: str) -> None:
    rwlock = toy_repo / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text(content)
    blocked = run(["dvc", "repro"], toy_repo, check=False, timeout=120)
    assert blocked.returncode != 0 and "RWLock-file" in blocked.stderr, blocked.stderr

    aside = repair_rwlock.repair_rwlock(toy_repo, pause=0.0)

    assert aside == rwlock.with_name("rwlock.corrupt") and aside.read_text() == content
    done = run(["dvc", "repro"], toy_repo, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (toy_repo / "out.txt").read_text().strip() == "made"
    assert json.loads(rwlock.read_text()) is not None  # DVC started a new, valid table


def test_valid_or_missing_rwlock_is_left_alone(tmp_path: Path) -> None:
    assert repair_rwlock.repair_rwlock(tmp_path) is None  # no .dvc/tmp at all
    rwlock = tmp_path / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True)
    table = '{"write": {}, "read": {"/repo/data": [{"pid": 4242, "cmd": "dvc repro"}]}}'
    rwlock.write_text(table)
    assert repair_rwlock.repair_rwlock(tmp_path, pause=0.0) is None
    assert rwlock.read_text() == table
    assert not rwlock.with_name("rwlock.corrupt").exists()


def test_json_that_is_not_a_table_counts_as_corrupt(tmp_path: Path) -> None:
    rwlock = tmp_path / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True)
    rwlock.write_text("[]")
    assert repair_rwlock.is_corrupt(rwlock)
    rwlock.write_text('{"read": {}}')
    assert not repair_rwlock.is_corrupt(rwlock)


def test_a_rewrite_in_progress_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live DVC mid-write shows an empty file for an instant; a later read that parses wins."""
    rwlock = tmp_path / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True)
    rwlock.write_text("")

    def finish_write(_: float) -> None:
        rwlock.write_text('{"read": {}}')

    monkeypatch.setattr(repair_rwlock.time, "sleep", finish_write)
    assert repair_rwlock.repair_rwlock(tmp_path) is None
    assert rwlock.read_text() == '{"read": {}}'


def test_lab_repro_after_a_torn_rwlock_just_runs(toy_repo: Path) -> None:
    """`scripts/lab repro` (the README's command) repairs the table before DVC reads it.

    The toy repository gets a copy of ``scripts/`` and ``pyproject.toml`` and this environment as
    its ``.venv``, so ``lab``'s setup finds everything installed and goes straight to DVC."""
    import sys

    venv = Path(sys.prefix)
    if not (venv / ".lmlab-installed").exists():
        pytest.skip("tests run outside the .venv that scripts/lab manages")
    copy_repository(toy_repo, files=("scripts", "pyproject.toml"), git=False)
    (toy_repo / ".venv").symlink_to(venv, target_is_directory=True)
    rwlock = toy_repo / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text("")

    proc = run([str(toy_repo / "scripts" / "lab"), "repro"], toy_repo, check=False, timeout=300)

    assert proc.returncode == 0, proc.stderr
    assert "a DVC process was killed while writing it" in proc.stderr
    assert (toy_repo / "out.txt").read_text().strip() == "made"
