"""The ensemble's causal model on a tiny Llama-architecture base: SentencePiece-style tokenizer, chat template.

Token-by-token checks of the templated SFT rows (prompt masked through the assistant header,
answer = output through ``<|im_end|>``), generation prompts equal to the training prompts, and
load / train / save / reload / generate (``ens_compare``'s path) on a local Llama dir with and
without a chat template.
"""

from __future__ import annotations

import json

import pytest

from lmlab.chat import chat_prompt_ids
from lmlab.ensemble.data import format_prompt
from lmlab.ensemble.training import (
    IGNORE_INDEX,
    CausalSFTCollator,
    SftModelParams,
    encode_chat_example,
    encode_chat_prompt,
)
from lmlab.modeling import ModelSpec
from tests.tiny_llama import save_tiny_llama, sentencepiece_tokenizer

ROWS = [
    {"instruction": "Identify weird machine gadgets.", "input": "3.1 Jumps\nJMP skips to a label.",
     "output": "gadget_type: Control-Flow gadget; location: Section 3.1 Jumps; explanation: JMP skips rungs."},
    {"instruction": "Find gadgets.", "input": "Short.", "output": "gadget_type: Read/Write; location: a; explanation: b"},
]
TEXTS = [v for r in ROWS for v in r.values()] * 10


@pytest.fixture(scope="module")
def chat_tokenizer():
    return sentencepiece_tokenizer(TEXTS, chat=True)


def test_templated_example_masks_the_prompt_and_supervises_the_answer_through_end_of_turn(chat_tokenizer):
    tok, row = chat_tokenizer, ROWS[0]
    ex = encode_chat_example(tok, row, max_source=512, max_target=512)
    prompt = chat_prompt_ids(tok, [{"role": "user", "content": format_prompt(row["instruction"], row["input"])}])
    n = len(prompt)
    assert ex["input_ids"][:n] == prompt and ex["labels"][:n] == [IGNORE_INDEX] * n
    answer = ex["input_ids"][n:]
    assert ex["labels"][n:] == answer and IGNORE_INDEX not in answer
    assert answer[-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(answer, skip_special_tokens=True).strip() == row["output"]
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n")
    # the generation prompt of ens_compare is exactly the training prompt
    assert encode_chat_prompt(tok, row["instruction"], row["input"], 512) == prompt
    full = encode_chat_example(tok, row, max_source=512, max_target=512, loss_on_prompt=True)
    assert full["labels"] == full["input_ids"] == ex["input_ids"]
    batch = CausalSFTCollator(tok.convert_tokens_to_ids("<|im_end|>"))([ex, full])
    assert (batch["labels"][0] != IGNORE_INDEX).sum() == len(answer)


def test_templated_truncation_keeps_the_header_and_the_end_of_turn(chat_tokenizer):
    tok, row = chat_tokenizer, ROWS[0]
    long = {**row, "input": row["input"] + " More text about rungs and jumps." * 30}
    ex = encode_chat_example(tok, long, max_source=40, max_target=8)
    prompt = encode_chat_prompt(tok, long["instruction"], long["input"], 40)
    assert len(prompt) <= 40 and tok.decode(prompt).endswith("<|im_start|>assistant\n")
    assert ex["input_ids"][: len(prompt)] == prompt
    assert len(ex["input_ids"]) - len(prompt) == 8 and ex["input_ids"][-1] == tok.eos_token_id


def test_chat_template_always_is_a_causal_option_only():
    assert SftModelParams(model=ModelSpec("tiny-gpt2"), chat_template="always").chat_template == "always"
    with pytest.raises(ValueError, match="chat_template"):
        SftModelParams(model=ModelSpec("tiny-t5"), chat_template="always")


@pytest.mark.slow
@pytest.mark.parametrize("template", [False, True], ids=["sentencepiece+specials", "chat-template"])
def test_tiny_llama_trains_saves_reloads_and_generates(tmp_path, template):
    from lmlab.device import select_runtime
    from lmlab.ensemble.compare import CompareParams, predict_with_model
    from lmlab.ensemble.training import train_instruction_model
    from lmlab.modeling import load_model
    from lmlab.tokenization import load_tokenizer
    from lmlab.training import TrainingParams

    base = save_tiny_llama(tmp_path / "base", sentencepiece_tokenizer(TEXTS, chat=template))
    tokenizer = load_tokenizer(base)  # as ens_train does for a non-tiny base
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # Llama has no pad: EOS stands in
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    params = SftModelParams(
        model=ModelSpec(str(base), max_positions=256), max_source_length=48, max_target_length=32,
        training=TrainingParams(max_steps=4, batch_size=2, eval_steps=2, save_steps=2, logging_steps=2, lr=1e-2,
                                device="cpu"),
    )
    info = train_instruction_model(params, ROWS * 2, ROWS[:1], tokenizer, select_runtime("cpu"), name="causal",
                                   inputs=[tmp_path / "train.jsonl", base], checkpoint_dir=tmp_path / "ck",
                                   live_dir=tmp_path / "live", out_dir=tmp_path / "model")
    assert info["kind"] == "causal" and info["global_step"] == 4 and "eval_loss" in info
    saved = json.loads((tmp_path / "model" / "ensemble_model.json").read_text())
    resolved = json.loads((tmp_path / "model" / "params.json").read_text())
    assert saved.get("chat_template", False) is template and resolved.get("chat_template", False) is template
    assert ("chat_template" in resolved) is template  # the plain layout writes no key: model dirs as before
    assert load_model(tmp_path / "model", "causal").config.model_type == "llama"
    assert bool(load_tokenizer(tmp_path / "model").chat_template) is template
    outputs = predict_with_model(tmp_path / "model", ROWS, CompareParams(max_new_tokens=6, batch_size=2))
    assert len(outputs) == len(ROWS) and all(isinstance(o, str) for o in outputs)
    # left padding with a pad token borrowed from EOS: the batched continuations are the unbatched ones
    assert predict_with_model(tmp_path / "model", ROWS, CompareParams(max_new_tokens=6, batch_size=1)) == outputs


def test_always_without_a_template_fails_before_training(tmp_path, tiny_tokenizer):
    from lmlab.device import select_runtime
    from lmlab.ensemble.training import train_instruction_model
    from lmlab.errors import InputError

    params = SftModelParams(model=ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64),
                            chat_template="always")
    with pytest.raises(InputError, match="no chat template") as err:
        train_instruction_model(params, ROWS, [], tiny_tokenizer, select_runtime("cpu"), name="causal", inputs=[],
                                checkpoint_dir=tmp_path / "ck", live_dir=tmp_path / "live", out_dir=tmp_path / "m")
    assert "ensemble.models.causal.chat_template" in str(err.value.describe())
    assert not (tmp_path / "m").exists() and not (tmp_path / "ck").exists()
