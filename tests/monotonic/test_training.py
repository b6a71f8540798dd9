"""lmlab.monotonic.training: packed training blocks and the arm protocol (baseline unconstrained, monotone constrained)."""

from __future__ import annotations

import pytest

from lmlab.errors import InputError
from lmlab.monotonic.training import pack_texts


def test_pack_texts_makes_full_blocks_with_eos_between_texts(tiny_tokenizer):
    texts = ["My house has three rooms.", "Dear Anna, how are you?", "I like football and music."] * 5
    blocks = pack_texts(tiny_tokenizer, texts, block_size=16)
    stream = []
    for ids in tiny_tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += ids + [tiny_tokenizer.eos_token_id]
    assert blocks and all(len(b) == 16 for b in blocks)
    assert sum(blocks, []) == stream[:16 * len(blocks)]


def test_pack_texts_rejects_a_corpus_shorter_than_one_block(tiny_tokenizer):
    with pytest.raises(InputError, match="fewer than one block"):
        pack_texts(tiny_tokenizer, ["short"], block_size=64)


@pytest.mark.slow
@pytest.mark.parametrize("constrained", [False, True])
def test_resume_restores_every_weight_of_a_gpt_neox(constrained, tmp_path, tiny_tokenizer):
    """transformers 5 saves GPT-NeoX's lm_head as embed_out; a resume must still load it (not keep it random)."""
    import torch

    from lmlab.modeling import ModelSpec, build_model
    from lmlab.monotonic.constraint import MonotonicParams, make_monotonic
    from lmlab.monotonic.training import train_causal_lm
    from lmlab.training import TrainingParams

    texts = [f"The town number {i} has a bridge, a market and {i % 7} old churches." for i in range(120)]
    params = TrainingParams(max_steps=4, batch_size=4, eval_steps=4, save_steps=4, logging_steps=2, device="cpu")

    def model():
        m = build_model(ModelSpec("tiny-gpt-neox", n_layer=1, d_model=32, n_head=2, d_ff=64), tiny_tokenizer, 0)
        return make_monotonic(m, MonotonicParams()) and m if constrained else m

    first = model()
    train_causal_lm(first, tiny_tokenizer, texts[:100], texts[100:], params, 16, 0, tmp_path / "ck", tmp_path / "l1")
    second = model()  # fresh weights; the complete checkpoint-4 is found and loaded, no step left to train
    train_causal_lm(second, tiny_tokenizer, texts[:100], texts[100:], params, 16, 0, tmp_path / "ck", tmp_path / "l2")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
