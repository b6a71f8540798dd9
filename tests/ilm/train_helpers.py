"""Tiny masked-example fixtures for the ILM training/evaluation tests (no upstream stages needed)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from lmlab.ilm.format import ILM_SPECIAL_TOKENS, MaskType
from lmlab.tokenization import add_special_tokens, train_bpe_tokenizer
from tests.conftest import write_params

DOCS = [
    "I live in a small house with my family. My house have three rooms.",
    "Dear Anna, how are you? I am fine. Yesterday I go to the cinema with my friends.",
    "In my opinion, the government should invest in public transport, although it is expensive.",
    "My name is Paulo and I am from Brazil. I like football and music.",
    "The product I bought arrived damaged, which is why I am writing to request a refund.",
    "I can't come to your party because I have an exam on Monday.",
]


def ilm_tokenizer():
    """A 400-token BPE with the 7 ILM special tokens (a fresh object: tests may not share mutations)."""
    tokenizer = train_bpe_tokenizer(DOCS * 20, vocab_size=400)
    add_special_tokens(tokenizer, ILM_SPECIAL_TOKENS)
    return tokenizer


def masked_docs(docs: list[str], examples_per_doc: int = 3, seed: int = 0) -> list[tuple[str, list[list[tuple]]]]:
    """``[(doc, [example, ...])]`` with 1-2 WORD/NGRAM spans per example (the masked-pickle structure)."""
    rng = random.Random(seed)
    out = []
    for doc in docs:
        words = list(re.finditer(r"\S+", doc))
        examples = []
        for _ in range(examples_per_doc):
            chosen = sorted(rng.sample(range(len(words)), min(len(words), rng.randint(1, 2))))
            examples.append([(int(rng.choice([MaskType.WORD, MaskType.NGRAM])), words[i].start(),
                              words[i].end() - words[i].start()) for i in chosen])
        out.append((doc, examples))
    return out


#: The params sections ILM training and evaluation read; the rest of params.yaml is left out.
TINY_SECTIONS = ("seed", "launcher", "ilm.model", "ilm.train", "ilm.budget", "ilm.eval", "ilm.transfer")
TINY = {
    "seed": 0,
    **{f"ilm.model.{k}": v for k, v in {"name": "tiny-gpt2", "n_layer": 1, "d_model": 32, "n_head": 2,
                                        "d_ff": 64, "max_positions": 128, "dropout": 0.0}.items()},
    "ilm.train.max_length": 128,
    "ilm.train.max_train_examples": None,
    "ilm.train.max_eval_examples": 8,
    "ilm.train.num_samples": 1,
    "ilm.train.sample_max_new_tokens": 4,
    "ilm.train.trainer.batch_size": 4,
    "ilm.train.trainer.eval_batch_size": 8,
    "ilm.train.trainer.lr": 1.0e-2,
    "ilm.train.trainer.warmup_ratio": 0.0,
    "ilm.train.trainer.logging_steps": 1,
    "ilm.train.trainer.save_total_limit": 2,
    "ilm.train.trainer.device": "cpu",
    **{f"ilm.eval.{k}": v for k, v in {"max_documents": 4, "max_examples_per_document": 2, "max_length": 128,
                                       "batch_size": 4, "bootstrap_resamples": 200, "device": "cpu"}.items()},
    "ilm.transfer.max_steps": 2,
}


def tiny_params(path: Path, max_steps: int = 4, every: int = 2, transfer: bool = False) -> Path:
    """A small params file of the ILM training/evaluation sections (``transfer``: levels ``[A1]``)."""
    from ruamel.yaml.comments import CommentedSeq

    levels = CommentedSeq(["A1"] if transfer else [])
    levels.fa.set_flow_style()  # `levels: [A1]`, as a user writes it
    overrides = {**TINY, "ilm.train.trainer.max_steps": max_steps, "ilm.train.trainer.eval_steps": every,
                 "ilm.train.trainer.save_steps": every, "ilm.transfer.levels": levels}
    return write_params(path, overrides, sections=TINY_SECTIONS)


def save_ilm_dir(out: Path, tokenizer, seed: int = 0) -> Path:
    """An untrained tiny ILM dir (model + tokenizer + ilm_special_tokens.json) for evaluation tests."""
    import json

    from lmlab.ilm.sequences import SPECIAL_TOKENS_FILE, IlmTokens
    from lmlab.modeling import ModelSpec, build_model

    spec = ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128)
    build_model(spec, tokenizer, seed=seed).save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / SPECIAL_TOKENS_FILE).write_text(json.dumps(IlmTokens.from_tokenizer(tokenizer).id_to_token()))
    return out
