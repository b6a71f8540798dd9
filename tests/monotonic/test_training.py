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


TEXTS = [f"The town number {i} has a bridge, a market and {i % 7} old churches." for i in range(120)]


def _train(tmp_path, tokenizer, model, texts, name, callbacks=()):
    """train_causal_lm with ``texts`` written to ``tmp_path/train.txt``, the run's input file."""
    from lmlab.monotonic.training import train_causal_lm
    from lmlab.training import TrainingParams

    (tmp_path / "train.txt").write_text("\n".join(texts))
    params = TrainingParams(max_steps=4, batch_size=4, eval_steps=2, save_steps=2, logging_steps=2, device="cpu")
    return train_causal_lm(model, tokenizer, texts, TEXTS[100:], params, 16, 0, resolved_params={"arm": "test"},
                           inputs=[tmp_path / "train.txt"], checkpoint_dir=tmp_path / name / "ck",
                           live_dir=tmp_path / name / "live", out_dir=None, callbacks=callbacks)


def _model(tokenizer, constrained: bool):
    from lmlab.modeling import ModelSpec, build_model
    from lmlab.monotonic.constraint import MonotonicParams, make_monotonic

    m = build_model(ModelSpec("tiny-gpt-neox", n_layer=1, d_model=32, n_head=2, d_ff=64), tokenizer, 0)
    if constrained:
        make_monotonic(m, MonotonicParams())
    return m


@pytest.mark.slow
@pytest.mark.parametrize("constrained", [False, True])
def test_resume_restores_every_weight_of_a_gpt_neox(constrained, tmp_path, tiny_tokenizer):
    """transformers 5 saves GPT-NeoX's lm_head as embed_out; a resume must still load it (not keep it random):
    a run killed after checkpoint-2 and resumed ends with the uninterrupted run's weights."""
    import torch

    from tests.interruption import KillAfterSave, SimulatedKill

    full = _model(tiny_tokenizer, constrained)
    assert _train(tmp_path, tiny_tokenizer, full, TEXTS[:100], "full").resumed_from is None
    with pytest.raises(SimulatedKill):
        _train(tmp_path, tiny_tokenizer, _model(tiny_tokenizer, constrained), TEXTS[:100], "killed",
               callbacks=[KillAfterSave(2)])
    resumed = _model(tiny_tokenizer, constrained)
    assert _train(tmp_path, tiny_tokenizer, resumed, TEXTS[:100], "killed").resumed_from.endswith("checkpoint-2")
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_killed_run_starts_over_when_its_training_data_changed(tmp_path, tiny_tokenizer):
    from tests.interruption import KillAfterSave, SimulatedKill

    with pytest.raises(SimulatedKill):
        _train(tmp_path, tiny_tokenizer, _model(tiny_tokenizer, True), TEXTS[:100], "run",
               callbacks=[KillAfterSave(2)])
    outcome = _train(tmp_path, tiny_tokenizer, _model(tiny_tokenizer, True), TEXTS[1:100], "run")
    assert outcome.resumed_from is None and outcome.result.global_step == 4
