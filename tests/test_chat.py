"""Chat templates: the mode switch, the prompt/answer boundary token by token, the end-of-turn rule."""

from __future__ import annotations

import pytest

from lmlab.chat import chat_messages, chat_prompt_ids, encode_chat, fit_chat_prompt, use_chat_template
from lmlab.errors import InputError
from lmlab.tokenization import add_special_tokens, train_bpe_tokenizer
from tests.tiny_llama import CHATML, sentencepiece_tokenizer

TEXTS = ["System: Decide: Accept or Reject.\nUser: Paper 3: solid method, clear gains.\nAssistant:\n\\boxed{Accept}",
         "User: the paper is weak, small data.\nAssistant:\n\\boxed{Reject}"] * 20
TURNS = [("system", "Decide: Accept or Reject."), ("user", "Paper 7: clear gains, small data.")]


def _byte_level_chatml(eos_is_end_of_turn: bool = True):
    """The repo's byte-level BPE with ChatML added: SmolLM2-Instruct's tokenizer in miniature."""
    tok = train_bpe_tokenizer(TEXTS, vocab_size=320)
    add_special_tokens(tok, ["<|im_start|>", "<|im_end|>"])
    if eos_is_end_of_turn:
        tok.eos_token = "<|im_end|>"
    tok.chat_template = CHATML
    return tok


def test_modes_resolve_against_the_tokenizer():
    plain, chat = train_bpe_tokenizer(TEXTS, vocab_size=320), _byte_level_chatml()
    assert use_chat_template(chat, "auto") and use_chat_template(chat, "always")
    assert not use_chat_template(chat, "never")
    assert not use_chat_template(plain, "auto") and not use_chat_template(plain, "never")
    with pytest.raises(InputError, match="no chat template"):
        use_chat_template(plain, "always", key="weighted.prompt.chat_template")
    with pytest.raises(InputError, match="must be one of"):
        use_chat_template(chat, "yes")


def test_byte_level_chatml_boundary_is_exact_token_by_token():
    tok = _byte_level_chatml()
    enc = encode_chat(tok, chat_messages(TURNS), "\\boxed{Accept}")
    assert enc.joint  # ids are the template's own tokenization of the whole conversation
    prompt_text = tok.apply_chat_template(chat_messages(TURNS), tokenize=False, add_generation_prompt=True)
    assert prompt_text.endswith("<|im_start|>assistant\n")
    assert list(enc.prompt_ids) == tok(prompt_text, add_special_tokens=False)["input_ids"]
    assert list(enc.prompt_ids) == chat_prompt_ids(tok, chat_messages(TURNS))
    # the answer: content, then the end-of-turn token (= EOS) and nothing after it (ChatML's "\n")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert enc.answer_ids[-1] == end == tok.eos_token_id and end not in enc.answer_ids[:-1]
    assert tok.decode(enc.answer_ids[:-1]) == "\\boxed{Accept}"
    full = tok(tok.apply_chat_template(chat_messages([*TURNS, ("assistant", "\\boxed{Accept}")]), tokenize=False),
               add_special_tokens=False)["input_ids"]
    n = len(enc.prompt_ids) + len(enc.answer_ids)
    assert list(enc.prompt_ids + enc.answer_ids) == full[:n] and tok.decode(full[n:]) == "\n"


def test_eos_is_appended_when_the_end_of_turn_token_is_not_eos():
    tok = _byte_level_chatml(eos_is_end_of_turn=False)
    enc = encode_chat(tok, chat_messages(TURNS), "\\boxed{Reject}")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert enc.answer_ids[-2:] == (end, tok.eos_token_id) and end != tok.eos_token_id


def test_sentencepiece_tokenizer_keeps_an_exact_boundary_when_it_merges_across_it():
    """A Metaspace BPE may merge ChatML's "\\n" with the answer: the answer is then tokenized alone."""
    tok = sentencepiece_tokenizer(TEXTS, chat=True)
    enc = encode_chat(tok, chat_messages(TURNS), "\\boxed{Accept}")
    prompt_text = tok.apply_chat_template(chat_messages(TURNS), tokenize=False, add_generation_prompt=True)
    assert list(enc.prompt_ids) == tok(prompt_text, add_special_tokens=False)["input_ids"]
    assert enc.answer_ids[-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(enc.answer_ids, skip_special_tokens=True).strip() == "\\boxed{Accept}"
    assert tok.bos_token_id not in enc.prompt_ids  # the template writes no BOS, so none is added


def test_fit_chat_prompt_cuts_the_user_text_and_keeps_the_header():
    tok = _byte_level_chatml()
    long_turns = [("user", "Paper 9: " + "clear gains, small data. " * 40)]
    full = chat_prompt_ids(tok, chat_messages(long_turns))
    fitted = fit_chat_prompt(tok, chat_messages(long_turns), 40)
    ids = chat_prompt_ids(tok, fitted)
    header = chat_prompt_ids(tok, [{"role": "user", "content": ""}])
    assert len(full) > 40 >= len(ids) > len(header)
    assert ids[-3:] == full[-3:]  # "<|im_start|>assistant\n" survives
    assert long_turns[0][1].startswith(fitted[0]["content"])  # head kept
    assert fit_chat_prompt(tok, chat_messages(TURNS), 400) == chat_messages(TURNS)
    with pytest.raises(InputError, match="template alone"):
        fit_chat_prompt(tok, chat_messages(long_turns), len(header) - 1)
