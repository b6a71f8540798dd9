"""Tiny ILM model directories for the infilling tests (built offline in a few seconds)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import torch

from lmlab.ilm.format import ILM_SPECIAL_TOKENS, MASK_TOKENS, MaskType, mask_document
from lmlab.modeling import ModelSpec, build_model
from lmlab.tokenization import add_special_tokens, train_bpe_tokenizer

ILM_TEXTS = [
    "I live in a small house with my family. My house have three rooms.",
    "Dear Anna, how are you? I am fine. Yesterday I go to the cinema with my friends.",
    "In my opinion, the government should invest in public transport, although it is expensive.",
    "My name is Paulo and I am from Brazil. I like football and music.",
    "The product I bought arrived damaged, which is why I am writing to request a refund.",
]


def ilm_sequences(tokenizer, texts: list[str], n: int, seed: int = 0) -> list[list[int]]:
    """``n`` ILM training sequences with 1-2 masked words per text."""
    rng = random.Random(seed)
    start, end = tokenizer.convert_tokens_to_ids(ILM_SPECIAL_TOKENS[:2])
    out = []
    for _ in range(n):
        doc = rng.choice(texts)
        words = [m for m in re.finditer(r"\w+", doc)]
        chosen = sorted(rng.sample(range(len(words)), rng.randint(1, 2)))
        spans = [(int(MaskType.WORD), words[i].start(), words[i].end() - words[i].start()) for i in chosen]
        context, answers = mask_document(doc, spans)
        ids = tokenizer(context, add_special_tokens=False)["input_ids"] + [start]
        for answer in answers:
            ids += tokenizer(answer, add_special_tokens=False)["input_ids"] + [end]
        out.append(ids)
    return out


def make_ilm_dir(out: Path, train_steps: int = 0, seed: int = 0, n_layer: int = 2, d_model: int = 32,
                 max_positions: int = 128) -> Path:
    """Save a tiny GPT-2 ILM (tokenizer with the 7 ILM tokens, ilm_special_tokens.json).

    With ``train_steps`` > 0 the model is briefly fitted on ILM sequences of ``ILM_TEXTS``
    (plain AdamW steps: a test fixture, not the training pipeline) so that it emits
    ``<|endofinfill|>`` and its generations stop.
    """
    tokenizer = train_bpe_tokenizer(ILM_TEXTS * 20, vocab_size=300)
    ids = add_special_tokens(tokenizer, ILM_SPECIAL_TOKENS)
    model = build_model(ModelSpec("tiny-gpt2", n_layer=n_layer, d_model=d_model, n_head=2, d_ff=4 * d_model,
                                  max_positions=max_positions), tokenizer, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is several times faster on a busy CPU
    if train_steps:
        torch.manual_seed(seed)
        seqs = ilm_sequences(tokenizer, ILM_TEXTS, 16 * train_steps, seed)
        optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model.train()
        for step in range(train_steps):
            batch = seqs[16 * step: 16 * step + 16]
            width = max(len(s) for s in batch)
            input_ids = torch.tensor([s + [tokenizer.pad_token_id] * (width - len(s)) for s in batch])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in batch])
            labels = input_ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optim.step()
            optim.zero_grad()
        model.eval()
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "ilm_special_tokens.json").write_text(
        json.dumps({str(i): t for i, t in zip(ids, ILM_SPECIAL_TOKENS)}), encoding="utf-8")
    return out


__all__ = ["ILM_TEXTS", "MASK_TOKENS", "ilm_sequences", "make_ilm_dir"]
