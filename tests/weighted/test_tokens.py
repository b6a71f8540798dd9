"""Decision-token detection works for any tokenizer: byte-level BPE, WordPiece, characters."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lmlab.errors import InputError
from lmlab.tokenization import train_bpe_tokenizer
from lmlab.weighted.data import DecisionExample
from lmlab.weighted.tokens import IGNORE_INDEX, decision_offset, encode_decisions

TEXTS = ["Strength: the method is novel. Weakness: the baselines are weak. \\boxed{Accept} \\boxed{Reject}",
         "System: Decide: Accept or Reject. User: Paper: a retrieval module. Assistant:"] * 30


def _examples(responses=("\\boxed{Accept}", "\\boxed{Reject}", "\\boxed{Accept}")):
    return [DecisionExample(f"r{i}", (("system", "Decide."), ("user", f"Strength: the method is novel {i}.")), resp,
                            "Accept" in resp.split("boxed")[-1], {}) for i, resp in enumerate(responses)]


def _wordpiece():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(TEXTS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]", "[PAD]", "[SEP]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[SEP]")


def _chars():
    return train_bpe_tokenizer(TEXTS, vocab_size=300, min_frequency=10**9)  # no merges: one token per byte


@pytest.mark.parametrize("make", [lambda: train_bpe_tokenizer(TEXTS, 400), _wordpiece, _chars],
                         ids=["bpe", "wordpiece", "chars"])
def test_decision_position_and_ids(make):
    tok = make()
    examples = _examples()
    encoded, vocab = encode_decisions(tok, examples, 256)
    assert set(vocab.accept_ids).isdisjoint(vocab.reject_ids)
    for ex, enc in zip(examples, encoded):
        assert enc.input_ids[enc.decision_pos] == (enc.accept_id if ex.accept else enc.reject_id)
        assert enc.labels[: enc.prompt_len] == (IGNORE_INDEX,) * enc.prompt_len
        assert enc.labels[enc.prompt_len:] == enc.input_ids[enc.prompt_len:]
        assert enc.input_ids[-1] == tok.eos_token_id
        a_piece = tok.decode([enc.accept_id]).strip().lower().lstrip("#")
        r_piece = tok.decode([enc.reject_id]).strip().lower().lstrip("#")
        assert a_piece and "accept".startswith(a_piece) and r_piece and "reject".startswith(r_piece)
        assert enc.prefix_ids == enc.input_ids[: enc.decision_pos]
    # the decision sits at the same offset inside every response
    assert len({e.decision_pos - e.prompt_len for e in encoded}) == 1


def test_decision_offset():
    assert decision_offset([1, 2, 3], [1, 2, 4]) == 2
    assert decision_offset([5], [6]) == 0
    with pytest.raises(ValueError):
        decision_offset([1, 2], [1, 2, 3])


def test_decision_word_before_the_decision_is_rejected():
    tok = train_bpe_tokenizer(TEXTS, 400)
    with pytest.raises(InputError, match="before the decision"):
        encode_decisions(tok, _examples(("Reject? No: \\boxed{Accept}", "\\boxed{Reject}")), 256)


def test_long_prompts_are_cut_from_the_left():
    tok = train_bpe_tokenizer(TEXTS, 400)
    (enc,), _ = encode_decisions(tok, _examples(("\\boxed{Accept}",)), 12)
    assert len(enc.input_ids) == 12 and enc.truncated
    assert tok.decode(list(enc.input_ids[enc.prompt_len:])).startswith("\\boxed{Accept}")
