"""ILM directories in the reference's layout (chrisdonahue/ilm ``train_ilm.py``), built offline.

The reference saves ``pytorch_model.bin`` (a ``GPT2LMHeadModel`` state dict, from transformers
2.7, whose attention layers still stored their causal-mask buffer ``attn.bias``), a transformers
2.x ``config.json`` (``n_ctx``, ``output_past``, ``torchscript`` ... and, here, no ``model_type``)
and ``additional_ids_to_tokens.pkl``; its tokenizer is GPT-2's BPE, which it does not save. The
fixture tokenizer is a small byte-level BPE saved as GPT-2's two files (``vocab.json`` +
``merges.txt``) in a directory of its own.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lmlab.ilm.format import ILM_SPECIAL_TOKENS
from lmlab.tokenization import train_bpe_tokenizer
from tests.ilm.infill_helpers import ILM_TEXTS


def make_gpt2_tokenizer_files(out: Path, vocab_size: int = 300) -> Path:
    """A GPT-2-format tokenizer (``vocab.json`` + ``merges.txt`` only), without the ILM tokens."""
    tokenizer = train_bpe_tokenizer(ILM_TEXTS * 20, vocab_size=vocab_size)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.model.save(str(out))
    return out


def make_gpt2_sized_tokenizer_files(out: Path) -> Path:
    """GPT-2's vocabulary size and layout (256 byte symbols ... ``<|endoftext|>`` = 50256), no merges."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    vocab.update({f"filler{i}": i for i in range(len(vocab), 50256)})
    vocab["<|endoftext|>"] = 50256
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return out


def base_vocab_size(tokenizer_dir: Path) -> int:
    return len(json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8")))


def reference_state_dict(model: GPT2LMHeadModel) -> dict[str, torch.Tensor]:
    """The model's weights as transformers 2.7 saved them: plus each layer's ``attn.bias`` mask buffer."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    n_ctx = model.config.n_positions
    for i in range(model.config.n_layer):
        state[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx)
    return state


def make_reference_dir(out: Path, base_vocab: int, seed: int = 0, n_embd: int = 32, n_layer: int = 2,
                       n_positions: int = 128) -> GPT2LMHeadModel:
    """Write a reference-layout ILM dir for a base vocabulary of ``base_vocab`` tokens; return the model."""
    config = GPT2Config(vocab_size=base_vocab + 7, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=2)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    # torch 1.4 (the reference's pin) wrote the legacy, non-zip serialization
    torch.save(reference_state_dict(model), out / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    legacy_config = {
        "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "embd_pdrop": 0.1, "finetuning_task": None,
        "bos_token_id": 0, "eos_token_id": 0,  # <|endoftext|> of the fixture BPE (GPT-2's is 50256)
        "initializer_range": 0.02, "is_decoder": False, "layer_norm_epsilon": 1e-05, "n_ctx": n_positions,
        "n_embd": n_embd, "n_head": 2, "n_layer": n_layer, "n_positions": n_positions, "num_labels": 1,
        "output_attentions": False, "output_hidden_states": False, "output_past": True, "pruned_heads": {},
        "resid_pdrop": 0.1, "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True, "torchscript": False, "use_bfloat16": False,
        "vocab_size": base_vocab + 7,
    }
    (out / "config.json").write_text(json.dumps(legacy_config, indent=2), encoding="utf-8")
    with open(out / "additional_ids_to_tokens.pkl", "wb") as handle:
        pickle.dump({base_vocab + i: token for i, token in enumerate(ILM_SPECIAL_TOKENS)}, handle, protocol=3)
    with open(out / "step.pkl", "wb") as handle:
        pickle.dump(0, handle)
    return model
