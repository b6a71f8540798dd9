"""ILM model directories in two layouts, one loader for both, and an exporter to the reference's layout.

- **lmlab** (written by ``ilm_train``): ``from_pretrained`` weights and config, the tokenizer with
  the 7 ILM tokens, and ``ilm_special_tokens.json`` (``{id: token}``).
- **reference** (``chrisdonahue/ilm`` ``train_ilm.py``): ``pytorch_model.bin`` + ``config.json`` of a
  ``GPT2LMHeadModel`` and ``additional_ids_to_tokens.pkl``, a pickled ``{id: token}`` of the 7 ILM
  tokens (``50257 <|startofinfill|>`` ... ``50263 <|infill_word|>`` for ``MaskHierarchical``). The
  reference tokenises with the base GPT-2 BPE (vendored in its repository) plus those 7 tokens
  and **does not save the tokenizer** in the directory.

The tokenizer of a reference directory therefore has to come from somewhere, and it must be the
one the model was trained with. :func:`load_ilm_dir` takes it from the directory itself when it
holds tokenizer files (``tokenizer.json``, or GPT-2's ``vocab.json`` + ``merges.txt`` as in the
lab's write-up 000 layout), else from ``tokenizer_source`` (a directory, or a hub name in the HF
cache; the default ``gpt2`` is what the reference trains with). Whatever the source, the 7 tokens
are added in id order and each must land on the id the pickle gives it (a base vocabulary of
another size cannot), and the model must have an embedding row for every token id; otherwise
the load fails with the source named. The source used is reported (``LoadedIlm.tokenizer_source``).

:func:`export_reference_dir` writes any loadable ILM directory (either layout) in the reference
layout: ``pytorch_model.bin`` (the state dict), ``config.json`` (with ``n_ctx`` and
``architectures`` for transformers 2.x), ``additional_ids_to_tokens.pkl`` (protocol 3, as the
reference's Python 3.6/3.7 wrote it), plus the tokenizer files and ``lmlab_export.json``. The
reference's own scripts can use the export only when the model's tokenizer is GPT-2's with the
7 tokens at 50257..50263 (a real ``gpt2`` base); lmlab's tiny models have their own 2,048-token
BPE, so ``lmlab_export.json`` says ``reference_tokenizer_compatible: false`` and only tools that
read the saved tokenizer (lmlab included) can use such an export.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from lmlab.errors import InputError
from lmlab.ilm.format import END_INFILL, ILM_SPECIAL_TOKENS, MASK_TOKENS, START_INFILL, MaskType
from lmlab.ilm.pickles import load_pickle
from lmlab.ilm.sequences import SPECIAL_TOKENS_FILE, IlmTokens

logger = logging.getLogger(__name__)

__all__ = ["REFERENCE_MAP_FILE", "REFERENCE_WEIGHTS_FILE", "DEFAULT_REFERENCE_TOKENIZER", "REFERENCE_BASE_VOCAB",
           "Layout", "LoadedIlm", "dir_layout", "read_reference_map", "load_reference_tokenizer", "load_ilm_dir",
           "export_reference_dir"]

REFERENCE_MAP_FILE = "additional_ids_to_tokens.pkl"
REFERENCE_WEIGHTS_FILE = "pytorch_model.bin"
EXPORT_INFO_FILE = "lmlab_export.json"
DEFAULT_REFERENCE_TOKENIZER = "gpt2"
REFERENCE_BASE_VOCAB = 50257  # GPT-2's vocabulary: the reference's first added id
Layout = Literal["lmlab", "reference"]


@dataclass
class LoadedIlm:
    """A loaded ILM directory: the model (eval mode), its tokenizer and special-token ids, and where they came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    tokens: IlmTokens
    layout: Layout
    tokenizer_source: str


def dir_layout(model_dir: str | Path) -> Layout:
    """Which layout ``model_dir`` has; :class:`InputError` when it is neither."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError("the ILM model directory does not exist.", path=model_dir,
                         hint="train it first (dvc repro ilm_train) or pass an existing directory.")
    if (model_dir / SPECIAL_TOKENS_FILE).is_file():
        return "lmlab"
    if (model_dir / REFERENCE_MAP_FILE).is_file():
        return "reference"
    raise InputError(
        f"'{model_dir}' has no ILM special-token map: neither {SPECIAL_TOKENS_FILE} (an lmlab ILM) nor "
        f"{REFERENCE_MAP_FILE} (an ILM trained by the reference train_ilm.py), so it is not an ILM model dir.",
        path=model_dir,
        hint="use a directory written by the ilm_train stage (models/ilm/<LEVEL>) or by the reference's train_ilm.py.")


def read_reference_map(model_dir: str | Path) -> dict[int, str]:
    """``additional_ids_to_tokens.pkl`` (restricted unpickler): ``{id: token}`` holding exactly the 7 ILM tokens."""
    path = Path(model_dir) / REFERENCE_MAP_FILE
    mapping = load_pickle(path)
    if not isinstance(mapping, dict) or not all(type(k) is int and type(v) is str for k, v in mapping.items()):
        raise InputError(f"expected a dict {{id (int): token (str)}}, got {type(mapping).__name__}.", path=path)
    if sorted(mapping.values()) != sorted(ILM_SPECIAL_TOKENS):
        raise InputError(f"the map holds {sorted(mapping.values())}, not the 7 ILM tokens (MaskHierarchical).",
                         path=path, hint="models trained with another --mask_cls have other tokens; lmlab "
                         "evaluates MaskHierarchical models only.")
    return mapping


def _tokens_from_map(mapping: dict[int, str]) -> IlmTokens:
    by_token = {tok: i for i, tok in mapping.items()}
    return IlmTokens(by_token[START_INFILL], by_token[END_INFILL],
                     {int(t): by_token[tok] for t, tok in MASK_TOKENS.items()})


def _has_tokenizer_files(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or ((path / "vocab.json").is_file() and (path / "merges.txt").is_file())


def _load_base_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """A tokenizer from a directory or cached hub name; a bare GPT-2 ``vocab.json`` + ``merges.txt`` dir too."""
    from lmlab.tokenization import load_tokenizer

    path = Path(source)
    try:
        return load_tokenizer(source)
    except InputError:
        if not (path / "vocab.json").is_file() or not (path / "merges.txt").is_file():
            raise
    # AutoTokenizer needs a config naming the tokenizer type; bare GPT-2 files do not name it
    from transformers import GPT2TokenizerFast

    tokenizer = GPT2TokenizerFast.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_reference_tokenizer(model_dir: str | Path, mapping: dict[int, str],
                             tokenizer_source: str | None = None) -> tuple[PreTrainedTokenizerBase, str]:
    """The tokenizer of a reference dir with the 7 tokens on the pickle's ids, and the source it came from.

    Source: the dir's own tokenizer files if any, else ``tokenizer_source`` (default ``gpt2``).
    Adding a token that is missing gives it the next free id, so the pickle's ids can only be
    reproduced by a base vocabulary of the size the model was trained with: anything else raises.
    """
    model_dir = Path(model_dir)
    if _has_tokenizer_files(model_dir):
        source = str(model_dir)
        if tokenizer_source and tokenizer_source not in (DEFAULT_REFERENCE_TOKENIZER, source):
            logger.warning("%s holds its own tokenizer files: using them, not %s", model_dir, tokenizer_source)
    else:
        source = tokenizer_source or DEFAULT_REFERENCE_TOKENIZER
    hint = ("the reference does not save its tokenizer: put GPT-2's vocab.json + merges.txt (or a tokenizer.json) in "
            "the model dir, or name a tokenizer directory / cached hub name (--tokenizer, "
            "ilm.infill_eval.reference_tokenizer, ilm.eval.reference_tokenizer).")
    try:
        tokenizer = _load_base_tokenizer(source)
    except InputError as exc:
        raise InputError(f"the reference-format ILM dir has no tokenizer files and the tokenizer source '{source}' "
                         f"cannot be loaded ({exc.what})", path=model_dir, hint=hint) from exc
    from lmlab.tokenization import add_special_tokens

    vocab = tokenizer.get_vocab()
    for token_id, token in sorted(mapping.items()):
        if token not in vocab and len(tokenizer) == token_id:
            add_special_tokens(tokenizer, [token])
        found = tokenizer.convert_tokens_to_ids(token)
        if found != token_id:
            raise InputError(
                f"the tokenizer from '{source}' gives {token} the id {found if token in tokenizer.get_vocab() else '-'}"
                f", but the model was trained with {token_id} (base vocabulary {len(vocab)} tokens): not the "
                "tokenizer this model was trained with.", path=model_dir / REFERENCE_MAP_FILE, hint=hint)
    return tokenizer, source


def _load_reference_model(model_dir: Path) -> PreTrainedModel:
    """``GPT2LMHeadModel`` (the only class the reference trains) from ``pytorch_model.bin`` + ``config.json``.

    Configs written by transformers 2.x may lack ``model_type``, so the class is named, not inferred.
    """
    if not (model_dir / "config.json").is_file():
        raise InputError("the reference-format ILM dir has no config.json.", path=model_dir)
    try:
        return GPT2LMHeadModel.from_pretrained(str(model_dir))
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"cannot load a GPT-2 model from '{model_dir}' ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0]}).", path=model_dir,
                         hint=f"a reference ILM dir holds {REFERENCE_WEIGHTS_FILE} and config.json "
                         "(train_ilm.py writes them at its best eval).") from exc


def load_ilm_dir(model_dir: str | Path, device: torch.device | str = "cpu",
                 tokenizer_source: str | None = None) -> LoadedIlm:
    """Load an ILM directory of either layout (module doc); ``tokenizer_source`` matters for reference dirs only."""
    from lmlab.modeling import load_model
    from lmlab.tokenization import load_tokenizer

    model_dir = Path(model_dir)
    layout = dir_layout(model_dir)
    if layout == "lmlab":
        tokenizer = load_tokenizer(model_dir)
        tokens = IlmTokens.from_model_dir(model_dir, tokenizer)  # InputError when the map disagrees
        model, source = load_model(model_dir, "causal"), str(model_dir)
    else:
        mapping = read_reference_map(model_dir)
        tokenizer, source = load_reference_tokenizer(model_dir, mapping, tokenizer_source)
        tokens = _tokens_from_map(mapping)
        model = _load_reference_model(model_dir)
    rows = model.get_input_embeddings().num_embeddings
    if rows < len(tokenizer):
        raise InputError(f"the model has {rows} embedding rows but its tokenizer ('{source}') has {len(tokenizer)} "
                         "tokens: they do not belong together.", path=model_dir)
    model = model.to(device)
    model.eval()
    logger.info("loaded %s ILM dir %s (tokenizer: %s)", layout, model_dir, source)
    return LoadedIlm(model, tokenizer, tokens, layout, source)


def _reference_order_ids(tokens: IlmTokens) -> list[int]:
    """The 7 ids in the reference's order: start, end, then the mask types in enum order."""
    return [tokens.start_infill, tokens.end_infill, *(tokens.masks[int(t)] for t in MaskType)]


def export_reference_dir(model_dir: str | Path, out_dir: str | Path, tokenizer_source: str | None = None
                         ) -> dict[str, Any]:
    """Write the ILM at ``model_dir`` (either layout) in the reference layout at ``out_dir``; return the export info.

    Only GPT-2 models can be exported (the reference loads ``GPT2LMHeadModel``).
    """
    from lmlab.artifacts import atomic_dir

    loaded = load_ilm_dir(model_dir, "cpu", tokenizer_source)
    if not isinstance(loaded.model, GPT2LMHeadModel):
        raise InputError(f"the reference loads GPT2LMHeadModel only; this model is a {type(loaded.model).__name__}.",
                         path=model_dir, hint="export a model trained with ilm.model.name tiny-gpt2 or a gpt2 base.")
    ids = _reference_order_ids(loaded.tokens)
    compatible = ids == list(range(REFERENCE_BASE_VOCAB, REFERENCE_BASE_VOCAB + 7)) \
        and len(loaded.tokenizer) == REFERENCE_BASE_VOCAB + 7
    config = loaded.model.config.to_dict()
    config.update(architectures=["GPT2LMHeadModel"], model_type="gpt2", n_ctx=loaded.model.config.n_positions)
    info = {
        "source": str(model_dir), "source_layout": loaded.layout, "tokenizer_source": loaded.tokenizer_source,
        "vocab_size": len(loaded.tokenizer), "special_token_ids": loaded.tokens.id_to_token(),
        "reference_tokenizer_compatible": compatible,
        "note": "the reference's scripts tokenise with GPT-2's BPE (ids 50257..50263 for the ILM tokens)"
        + ("" if compatible else "; this model has its own tokenizer (saved here): load the dir with lmlab or "
           "another tool that reads the saved tokenizer, not with the reference's ilm.tokenize_util"),
    }
    with atomic_dir(out_dir) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in loaded.model.state_dict().items()}
        torch.save(state, tmp / REFERENCE_WEIGHTS_FILE)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        with open(tmp / REFERENCE_MAP_FILE, "wb") as handle:
            pickle.dump({int(i): tok for i, tok in loaded.tokens.id_to_token().items()}, handle, protocol=3)
        loaded.tokenizer.init_kwargs.pop("local_files_only", None)
        loaded.tokenizer.save_pretrained(tmp)
        (tmp / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if not compatible:
        logger.warning("exported %s to %s: its tokenizer is not GPT-2's (%d tokens), so only tools that read the "
                       "saved tokenizer can use it (see %s)", model_dir, out_dir, len(loaded.tokenizer), EXPORT_INFO_FILE)
    return info
