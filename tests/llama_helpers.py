"""A tiny Llama-architecture checkpoint with a SentencePiece-style tokenizer, built offline.

SmolLM2 and every Llama-family base differ from the tiny GPT-2/GPT-NeoX/T5 defaults where code
breaks: a gated MLP (``gate_proj``/``up_proj``/``down_proj`` with ``act_fn``), RMSNorm, no pad
token, and (Llama-2, Mistral, T5) a Metaspace tokenizer that marks word starts with ``▁`` instead of
byte-level spaces. The directory is an ordinary ``from_pretrained`` dir, so it goes through the same
loading code as a hub name or ``models/pretrained/smollm2-135m-instruct``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def metaspace_tokenizer(texts: Sequence[str], vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """A SentencePiece-style BPE (Metaspace ``▁`` word marks, byte fallback), ``<s>``/``</s>``, no pad token."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(list(texts) * 10, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    assert fast.pad_token is None  # as Llama's: lmlab must add one
    return fast


def tiny_llama_dir(path: Path, texts: Sequence[str], seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer Llama (hidden 32, gated MLP 64, GQA) and its tokenizer to ``path``."""
    tokenizer = metaspace_tokenizer(texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, hidden_act="silu", tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
