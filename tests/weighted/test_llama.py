"""The weighted family on a tiny Llama-architecture base: SentencePiece-style tokenizer, chat template.

Token-by-token checks of the templated decision rows (prompt masked up to the assistant header,
decision token found after it, end-of-turn token supervised), the plain layout unchanged for
tokenizers without a template, and load / train / save / reload / evaluate through
``lmlab.training.run_training`` on a local Llama dir with and without a chat template.
"""

from __future__ import annotations

import json

import pytest

from lmlab.chat import chat_messages, chat_prompt_ids
from lmlab.tokenization import prepare_tokenizer, train_bpe_tokenizer
from lmlab.weighted.data import read_decisions
from lmlab.weighted.tokens import IGNORE_INDEX, encode_decisions
from tests.tiny_llama import EXTRA_TOKENS, save_tiny_llama, sentencepiece_tokenizer
from tests.weighted.helpers import row, write_jsonl

ROWS = [row(f"Paper {i}: {'solid method, clear gains' if i % 2 else 'weak baseline, small data'}.",
            r"The evidence is clear. \boxed{Accept}" if i % 2 else r"\boxed{Reject}", f"r{i}") for i in range(16)]
TEXTS = [turn["value"] for r in ROWS for turn in r["conversations"]]


@pytest.fixture()
def examples(tmp_path):
    return read_decisions(write_jsonl(tmp_path / "rows.jsonl", ROWS))


def test_templated_rows_mask_the_prompt_and_find_the_decision_after_the_assistant_header(examples):
    tok = sentencepiece_tokenizer(TEXTS, chat=True)
    encoded, vocab = encode_decisions(tok, examples, max_length=256, chat=True)
    end_of_turn = tok.convert_tokens_to_ids("<|im_end|>")
    header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    for ex, enc in zip(examples, encoded):
        prompt = chat_prompt_ids(tok, chat_messages(ex.turns))
        assert list(enc.prompt_ids) == prompt and prompt[-len(header):] == header
        assert enc.labels[: enc.prompt_len] == (IGNORE_INDEX,) * enc.prompt_len
        answer = enc.input_ids[enc.prompt_len:]
        assert enc.labels[enc.prompt_len:] == answer  # every answer token supervised ...
        assert answer[-1] == end_of_turn and end_of_turn not in answer[:-1]  # ... through <|im_end|>, then nothing
        assert enc.prompt_len <= enc.decision_pos < len(enc.input_ids) - 1
        decision = enc.input_ids[enc.decision_pos]
        assert decision == (enc.accept_id if ex.accept else enc.reject_id)
        assert decision in (vocab.accept_ids if ex.accept else vocab.reject_ids)
        # the first token where the Accept and Reject answers differ covers the decision's first letter
        assert ("A" if ex.accept else "R") in tok.decode([decision])
        before = tok.decode(enc.input_ids[enc.prompt_len: enc.decision_pos]).strip()
        word = "Accept" if ex.accept else "Reject"
        assert ex.response.startswith(before) and word not in before and word in ex.response[len(before):]
        assert tok.decode(answer, skip_special_tokens=True).strip() == ex.response
    # a long prompt is cut from the left: the assistant header survives
    short = encode_decisions(tok, examples[:2], max_length=24, chat=True)[0]
    assert all(len(e.input_ids) <= 24 and list(e.prompt_ids[-len(header):]) == header for e in short)


def test_plain_layout_is_unchanged_without_a_template(examples):
    """The embedded default's tokenizer has no template: ids are the plain layout's, as before chat templates."""
    tok = train_bpe_tokenizer(TEXTS, vocab_size=320)
    encoded, _ = encode_decisions(tok, examples, max_length=256, chat=False)
    for ex, enc in zip(examples, encoded):
        prompt = tok(ex.prompt, add_special_tokens=True)["input_ids"]
        response = tok(ex.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert list(enc.input_ids) == prompt + response
        assert list(enc.labels) == [IGNORE_INDEX] * len(prompt) + response


def _train_and_evaluate(tmp_path, examples, template: bool, mode: str = "auto"):
    """Train on a tiny Llama dir whose tokenizer has (``template``) a chat template or not, then evaluate."""
    from lmlab.modeling import ModelSpec
    from lmlab.training import TrainingParams
    from lmlab.weighted.evaluation import evaluate_model_dir
    from lmlab.weighted.training import train_weighted

    base = save_tiny_llama(tmp_path / "base", sentencepiece_tokenizer(TEXTS, chat=template))
    # as wl_tokenizer does for a non-tiny base: its own tokenizer, a pad token and the family's specials
    tokenizer = prepare_tokenizer(str(base), [], 0, special_tokens=["<decision>"], is_tiny=False)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id and "<decision>" in tokenizer.get_vocab()
    spec = ModelSpec(str(base), max_positions=256)
    training = TrainingParams(max_steps=4, batch_size=4, save_steps=2, logging_steps=2, lr=1e-2, device="cpu")
    data = tmp_path / "rows.jsonl"
    result = train_weighted(examples, tokenizer, spec, training, gamma=2.0, variant="accept", scope="decision",
                            seed=0, out_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ck",
                            live_dir=tmp_path / "live", resolved_params={"gamma": 2.0}, inputs=[data],
                            data_path=data, chat_template=mode)
    assert result["steps"] == 4
    used = template and mode != "never"
    summary = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    params = json.loads((tmp_path / "model" / "params.json").read_text())
    assert summary.get("chat_template", False) is used and params.get("chat_template", False) is used
    assert ("chat_template" in params) is used  # the plain layout writes no key: model dirs as before
    evaluated = evaluate_model_dir(tmp_path / "model", examples, batch_size=5, max_new_tokens=6)
    return tokenizer, evaluated


@pytest.mark.slow
@pytest.mark.parametrize("template", [False, True], ids=["sentencepiece+specials", "chat-template"])
def test_tiny_llama_trains_saves_reloads_and_evaluates(tmp_path, examples, template):
    from lmlab.modeling import load_model
    from lmlab.tokenization import load_tokenizer

    tokenizer, evaluated = _train_and_evaluate(tmp_path, examples, template)
    model = load_model(tmp_path / "model", "causal")
    assert model.config.model_type == "llama"
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)  # resized for the added tokens
    reloaded = load_tokenizer(tmp_path / "model")
    assert bool(reloaded.chat_template) is template and set(EXTRA_TOKENS) <= set(reloaded.get_vocab())
    metrics = evaluated["metrics"]
    assert metrics["n"] == len(examples) and 0.0 <= metrics["acceptance_rate"] <= 1.0
    assert len(evaluated["p_accept"]) == len(examples) and 0.0 <= metrics["brier"] <= 1.0
    assert len(evaluated["generations"]) == len(examples)


def test_always_without_a_template_fails_before_training(tmp_path, examples):
    from lmlab.errors import InputError

    with pytest.raises(InputError, match="no chat template"):
        _train_and_evaluate(tmp_path, examples, template=False, mode="always")
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_never_keeps_the_plain_layout_for_a_template_tokenizer(tmp_path, examples):
    _train_and_evaluate(tmp_path, examples, template=True, mode="never")  # asserts no chat_template key


def test_a_bad_chat_template_mode_stops_the_stage_naming_the_key(tmp_path, caplog):
    from stages.wl_train import main
    from tests.weighted.helpers import tiny_params

    params = tiny_params(tmp_path, prompt__chat_template="sometimes")
    code = main(["--params", str(params), "--config", "odds_1_2-baseline", "--train", str(tmp_path / "missing.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "m"), "--checkpoints", str(tmp_path / "c")])
    assert code == 2 and not (tmp_path / "m").exists()
    assert "weighted.prompt.chat_template" in caplog.text and "sometimes" in caplog.text
