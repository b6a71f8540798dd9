"""Tokenizers: a byte-level BPE trained in the pipeline, or a real model's own, plus special tokens."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmlab.errors import InputError

if TYPE_CHECKING:  # imported where a tokenizer is built or loaded: TokenizerParams and iter_corpus_texts
    # cost no transformers/torch start-up (the params check, data stages; issue 18)
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

__all__ = ["TokenizerParams", "train_bpe_tokenizer", "prepare_tokenizer", "load_tokenizer", "add_special_tokens", "EOS_TOKEN",
           "drops_leading_space", "word_mark_id", "decode_continuation"]


@dataclass(frozen=True)
class TokenizerParams:
    """``<family>.tokenizer``: BPE size and the family's special tokens (stage ``<family>_tokenizer``)."""

    vocab_size: int = 2048
    min_frequency: int = 2
    special_tokens: tuple[str, ...] = ()
    text_fields: tuple[str, ...] = ("text",)

    def __post_init__(self) -> None:
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size: must be >= 300, got {self.vocab_size}")


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on ``texts`` (deterministic for the same input)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise InputError(f"vocab_size must be at least 300 (256 bytes + specials), got {vocab_size}.",
                         key="tokenizer.vocab_size")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, unk_token=EOS_TOKEN, pad_token=PAD_TOKEN
    )
    fast.model_max_length = 1024
    logger.info("trained byte-level BPE with %d tokens", len(fast))
    return fast


def add_special_tokens(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str]) -> list[int]:
    """Add ``tokens`` as additional special tokens (idempotent); return their ids in order."""
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def prepare_tokenizer(
    base_model: str,
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = (),
    is_tiny: bool = True,
    min_frequency: int = 2,
) -> PreTrainedTokenizerBase:
    """The tokenizer a family trains with: trained BPE for tiny models, else the base model's own.

    Both paths get a pad token and the family's ``special_tokens`` added the same way.
    """
    tokenizer = train_bpe_tokenizer(texts, vocab_size, min_frequency) if is_tiny else load_tokenizer(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    add_special_tokens(tokenizer, special_tokens)
    return tokenizer


def drops_leading_space(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True for SentencePiece-style (Metaspace) tokenizers: ``decode(encode(" x"))`` loses the space.

    Byte-level BPE (GPT-2, SmolLM2, the pipeline's own) keeps it. Code that encodes or decodes a
    piece of text *on its own* (ILM segments and answers) must then treat word marks explicitly.
    """
    ids = tokenizer(" x", add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids) != " x"


def word_mark_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """Id of the lone word mark ``▁`` a Metaspace tokenizer puts before a piece that starts with
    punctuation (``", and"`` -> ``▁ , ▁and``, where the whole text has just ``,``); None for byte-level BPE."""
    if not drops_leading_space(tokenizer):
        return None
    return tokenizer.get_vocab().get("\u2581")


def decode_continuation(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], keeps_space: bool | None = None) -> str:
    """Decode ``ids`` that continue earlier text (an infill answer), special tokens skipped.

    A Metaspace decoder strips the word mark of a sequence's first token (``▁live`` -> ``live``), so
    an answer would lose its leading space; there the ids are decoded after an anchor token whose
    text is then cut off. Byte-level tokenizers decode plainly (``keeps_space``: the caller's cached
    ``not drops_leading_space(tokenizer)``).
    """
    if keeps_space is None:
        keeps_space = not drops_leading_space(tokenizer)
    if keeps_space:
        return tokenizer.decode(ids, skip_special_tokens=True)
    special = set(tokenizer.all_special_ids)
    kept = [i for i in ids if i not in special]
    anchor = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else next(iter(special))
    prefix = tokenizer.decode([anchor])
    return tokenizer.decode([anchor, *kept])[len(prefix):]


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer from a local directory or a hub name (offline: cache only)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot load a tokenizer from '{name_or_path}' ({exc.__class__.__name__}: {str(exc).splitlines()[0]}).",
            path=name_or_path if Path(name_or_path).exists() else None,
            hint="use a local model directory, a hub name already in the HF cache, or a tiny-* default.",
        ) from exc
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def iter_corpus_texts(path: str | Path, text_fields: Sequence[str] = ("text",), encoding: str = "utf-8",
                      fields_key: str = "tokenizer.text_fields") -> list[str]:
    """Texts to train a tokenizer on: CSV columns, every string in a JSONL file, or a text file's paragraphs.

    ``fields_key`` is the params key of ``text_fields``, named in the error for a missing column.
    """
    from lmlab.inputs import read_jsonl, read_text_strict

    path = Path(path)
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False)
        missing = [c for c in text_fields if c not in frame.columns]
        if missing:
            raise InputError(f"column(s) {missing} not found (columns: {list(frame.columns)}).", path=path,
                             key=fields_key, hint=f"set {fields_key} to the text column names.")
        return [t for col in text_fields for t in frame[col].tolist() if t.strip()]
    if path.suffix == ".jsonl":
        texts: list[str] = []

        def walk(obj: object) -> None:
            if isinstance(obj, str):
                texts.append(obj)
            elif isinstance(obj, dict):
                for value in obj.values():
                    walk(value)
            elif isinstance(obj, list):
                for value in obj:
                    walk(value)

        for row in read_jsonl(path, encoding=encoding):
            walk(row)
        return texts
    return [p for p in read_text_strict(path, encoding).split("\n") if p.strip()]
