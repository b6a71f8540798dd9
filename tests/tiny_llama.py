"""A tiny Llama-architecture base model built offline, with SentencePiece-style tokenizers.

SmolLM2, Llama and Qwen bases differ from the tiny GPT-2 default in ways that break code paths
quietly: a gated MLP (``gate_proj``/``up_proj``/``down_proj`` with ``act_fn``), RMSNorm, no pad token, a Metaspace (SentencePiece-like) tokenizer whose words carry a leading
``▁``, byte fallback, special tokens added on top of the vocabulary, and a chat template. The
builders here make such a base in a temporary directory (random weights, a BPE trained on the
given texts in milliseconds) so the families' load / train / save / evaluate paths can be run on
it as on a local checkpoint dir (``model.name: <dir>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""SmolLM2-Instruct's ChatML layout (its template also adds a default system turn; not needed here)."""

EXTRA_TOKENS = ("<extra_0>", "<extra_1>")
"""Special tokens added on top of the trained vocabulary (as a family's ``tokenizer.special_tokens``)."""


def sentencepiece_tokenizer(texts: Iterable[str], vocab_size: int = 400, chat: bool = False,
                            extra: Sequence[str] = EXTRA_TOKENS) -> PreTrainedTokenizerFast:
    """A Llama-like BPE: Metaspace pre-tokenizer (``▁`` words), byte fallback, ``<s>``/``</s>``, no pad.

    ``chat``: ChatML tokens are added as special tokens, ``<|im_end|>`` becomes EOS (as in
    SmolLM2-Instruct and Qwen2.5-Instruct) and :data:`CHATML` is the chat template. ``extra``
    special tokens are added after training, so their ids lie beyond the trained vocabulary.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁",
                                                                                 prepend_scheme="first")])
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size + 256, special_tokens=["<unk>", "<s>", "</s>", *bytes_],
                                  show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.model_max_length = 1024
    if chat:  # part of the base's vocabulary, as in a real instruction-tuned checkpoint
        fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        fast.eos_token = "<|im_end|>"
        fast.chat_template = CHATML
    fast.add_special_tokens({"additional_special_tokens": list(extra)}, replace_extra_special_tokens=False)
    assert fast.pad_token is None  # like Llama: lmlab must supply one
    return fast


def metaspace_tokenizer(texts: Sequence[str], vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """The plainest SentencePiece-style BPE: Metaspace ``▁`` word marks, ``<s>``/``</s>``, no pad token.

    Unlike :func:`sentencepiece_tokenizer` it has no byte tokens, chat tokens or added specials, so
    the ILM and monotonic tests see only the word-mark behaviour they are about.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(list(texts) * 10, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    assert fast.pad_token is None  # as Llama's: lmlab must add one
    return fast


def save_tiny_llama(directory: Path, tokenizer: PreTrainedTokenizerFast, seed: int = 0,
                    max_positions: int = 256, layers: int = 1, heads: int = 2, kv_heads: int = 1) -> Path:
    """Save a randomly initialised Llama (hidden 32, gated MLP 64, GQA) and ``tokenizer`` to ``directory``.

    Default: 1 layer, 2 heads, 1 KV head. The embeddings stop before the :data:`EXTRA_TOKENS` (added
    last), so loading it for a family exercises the embedding resize, as adding special tokens to a
    real base does.
    """
    vocab = tokenizer.get_vocab()
    config = LlamaConfig(
        vocab_size=min((vocab[t] for t in EXTRA_TOKENS if t in vocab), default=len(tokenizer)), hidden_size=32,
        intermediate_size=64, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=None, tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_llama_dir(path: Path, texts: Sequence[str], seed: int = 0) -> Path:
    """A 2-layer Llama (4 heads, 2 KV heads) with :func:`metaspace_tokenizer` saved to ``path``."""
    return save_tiny_llama(path, metaspace_tokenizer(texts), seed, layers=2, heads=4, kv_heads=2)
