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


def test_recovery_length_in_epochs_counts_the_packed_blocks(tmp_path, tiny_tokenizer):
    """epochs: 1 over 100 texts packed into blocks of 16 with batch 4 trains ceil(blocks / 4) steps."""
    from lmlab.monotonic.training import train_causal_lm
    from lmlab.training import TrainingParams

    texts = TEXTS[:100]
    (tmp_path / "train.txt").write_text("\n".join(texts))
    blocks = len(pack_texts(tiny_tokenizer, texts, 16))
    params = TrainingParams(max_steps=1000, epochs=1.0, batch_size=4, eval_steps=50, save_steps=50,
                            logging_steps=50, device="cpu")
    outcome = train_causal_lm(_model(tiny_tokenizer, True), tiny_tokenizer, texts, TEXTS[100:], params, 16, 0,
                              resolved_params={"arm": "epochs"}, inputs=[tmp_path / "train.txt"],
                              checkpoint_dir=tmp_path / "ck", live_dir=tmp_path / "live", out_dir=None)
    assert blocks > 8 and outcome.result.global_step == -(-blocks // 4)


def test_start_model_is_the_constrained_base_recovery_starts_from(tmp_path, tiny_tokenizer):
    """mono_eval's 'before recovery' model: the pretrained weights, |W| + eps on the FFN projections."""
    import torch

    from lmlab.modeling import save_model_dir
    from lmlab.monotonic.constraint import MonotonicParams, constrained_modules
    from lmlab.monotonic.training import start_model

    base = _model(tiny_tokenizer, False)
    save_model_dir(tmp_path / "pre", base, tiny_tokenizer, {})
    plain, summary = start_model(tmp_path / "pre", False, MonotonicParams())
    assert summary is None and not constrained_modules(plain)
    mono, summary = start_model(tmp_path / "pre", True, MonotonicParams())
    assert summary["modules"] and summary["min_weight_before_training"] > 0
    for name in summary["modules"]:
        before = base.get_submodule(name).weight.detach()
        assert torch.allclose(mono.get_submodule(name).weight.detach(), before.abs() + 1e-4, atol=1e-5)
    untouched = "gpt_neox.layers.0.attention.query_key_value"
    assert torch.equal(mono.get_submodule(untouched).weight, base.get_submodule(untouched).weight)
