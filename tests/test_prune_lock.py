"""scripts/prune_lock.py: dvc.lock keeps entries only for the stages dvc.yaml defines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, load_script

prune_lock = load_script("prune_lock")

DVC_YAML = """\
stages:
  make:
    foreach: [a, b]
    do:
      cmd: echo ${item} > out_${item}.txt
      outs:
        - out_${item}.txt
"""


def _entry(name: str) -> str:
    return textwrap.dedent(f"""\
      {name}:
        cmd: echo x > out.txt
        outs:
        - path: out_{name}.txt
          hash: md5
          md5: 0123456789abcdef0123456789abcdef
          size: 2
    """)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    return tmp_path


def test_prunes_only_stages_missing_from_dvc_yaml(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = _entry("make@a") + _entry("make@b")
    lock = "schema: '2.0'\nstages:\n" + textwrap.indent(_entry("make@a") + _entry("old@x") + _entry("make@b"), "  ")
    (repo / "dvc.lock").write_text(lock)

    assert prune_lock.main(["--root", str(repo), "--check"]) == 1
    assert "old@x" in capsys.readouterr().out
    assert (repo / "dvc.lock").read_text() == lock  # --check writes nothing

    assert prune_lock.main(["--root", str(repo)]) == 0
    assert (repo / "dvc.lock").read_text() == "schema: '2.0'\nstages:\n" + textwrap.indent(kept, "  ")
    assert prune_lock.main(["--root", str(repo), "--check"]) == 0
    assert sorted(p.name for p in repo.iterdir()) == [".dvc", "dvc.lock", "dvc.yaml"]  # no temp file left


def test_committed_lock_has_no_stale_entries() -> None:
    """Stale entries slow every no-op `dvc repro` (the lock is parsed twice) and mislead readers."""
    assert prune_lock.main(["--root", str(REPO_ROOT), "--check"]) == 0, "run `python scripts/prune_lock.py`"
