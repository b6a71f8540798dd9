"""The infiller registry: ilm/mlm/t5 specs on tiny offline models."""

from __future__ import annotations

import pytest

from lmlab.errors import InputError
from lmlab.ilm.format import MaskType
from lmlab.ilm.infillers import INFILLERS, InfillOptions, make_infiller, parse_spec, split_document
from tests.ilm.infill_helpers import ILM_TEXTS, make_ilm_dir

W = int(MaskType.WORD)
DOC = "My name is Paulo and I am from Brazil."
ITEMS = [(DOC, [(W, 3, 4)]), (DOC, [(W, 11, 5), (W, 31, 6)]), (ILM_TEXTS[0], [(W, 0, 1), (W, 2, 4), (W, 10, 5)])]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(ILM_TEXTS * 5, trainers.WordPieceTrainer(vocab_size=150, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=fast.pad_token_id)
    out = tmp_path_factory.mktemp("bert") / "tiny-bert"
    BertForMaskedLM(config).save_pretrained(out)
    fast.save_pretrained(out)
    return out, fast


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    from lmlab.modeling import ModelSpec, build_model
    from lmlab.tokenization import add_special_tokens, train_bpe_tokenizer

    tok = train_bpe_tokenizer(ILM_TEXTS * 20, vocab_size=300)
    add_special_tokens(tok, [f"<extra_id_{i}>" for i in range(5)])
    model = build_model(ModelSpec("tiny-t5", n_layer=1, d_model=32, n_head=2, d_ff=64), tok, seed=0)
    out = tmp_path_factory.mktemp("t5") / "tiny-t5"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, tok


def test_registry_and_spec_parsing():
    assert {"ilm", "mlm", "t5"} <= set(INFILLERS)
    assert parse_spec("ilm:models/ilm/all") == ("ilm", "models/ilm/all")
    for bad in ("models/ilm/all", "gpt:foo", "ilm:"):
        with pytest.raises(InputError, match="bad model spec"):
            parse_spec(bad)


def test_split_document():
    assert split_document(DOC, [(W, 11, 5), (W, 31, 6)]) == (["My name is ", " and I am from ", "."],
                                                            ["Paulo", "Brazil"])


def test_ilm_spec_returns_one_string_per_span(tmp_path):
    infiller = make_infiller(f"ilm:{make_ilm_dir(tmp_path / 'ilm')}", InfillOptions(max_new_tokens=6, device="cpu"))
    out = infiller.infill(ITEMS)
    assert [len(o) for o in out] == [1, 2, 3]
    assert all(isinstance(s, str) for row in out for s in row)


def test_mlm_fills_one_mask_per_gold_subword(bert_dir):
    out_dir, tok = bert_dir
    infiller = make_infiller(f"mlm:{out_dir}", InfillOptions(batch_size=2, device="cpu"))
    ids, positions = infiller._encode(DOC, [(W, 11, 5), (W, 31, 6)])
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert [len(p) for p in positions] == [len(tok(" Paulo", add_special_tokens=False)["input_ids"]),
                                           len(tok(" Brazil", add_special_tokens=False)["input_ids"])]
    assert all(ids[p] == tok.mask_token_id for span in positions for p in span)
    out = infiller.infill(ITEMS)
    assert [len(o) for o in out] == [1, 2, 3]
    # every mask was replaced by a real token: the decoded spans hold no mask / special token
    assert all("[MASK]" not in s and s.strip() for row in out for s in row)


def test_mlm_rejects_a_model_without_mask_token(tiny_model_dir):
    with pytest.raises(InputError, match="no mask token"):
        make_infiller(f"mlm:{tiny_model_dir}")


def test_t5_sentinel_parsing_and_generation(t5_dir):
    out_dir, tok = t5_dir
    infiller = make_infiller(f"t5:{out_dir}", InfillOptions(max_new_tokens=8, device="cpu"))
    s0, s1 = tok.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_1>"])
    word = tok(" house", add_special_tokens=False)["input_ids"]
    assert infiller._parse([s0, *word, s1, *word, *word, tok.eos_token_id, *word], 2) == ["house", "house house"]
    assert infiller._parse([s1, *word], 2) == ["", "house"]
    assert [len(o) for o in infiller.infill(ITEMS)] == [1, 2, 3]
    with pytest.raises(InputError, match="sentinels"):
        infiller.infill([(ILM_TEXTS[0], [(W, i, 1) for i in range(0, 12, 2)])])


def test_t5_rejects_a_tokenizer_without_sentinels(tiny_model_dir):
    with pytest.raises(InputError, match="extra_id_0"):
        make_infiller(f"t5:{tiny_model_dir}")


def test_the_params_check_knows_every_registered_kind():
    """``ilm.infill_eval.models`` is validated without torch (lmlab.ilm.params) against this registry."""
    from lmlab.ilm.params import INFILLER_KINDS, check_spec_syntax

    assert set(INFILLER_KINDS) == set(INFILLERS)
    check_spec_syntax("ilm:models/ilm/all")
    with pytest.raises(InputError):
        check_spec_syntax("gpt:models/x")
