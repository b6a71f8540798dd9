"""ILM on a Llama-architecture model with a SentencePiece-style (Metaspace) tokenizer: special tokens,
segment encoding, load/train/save/evaluate/infill through the code the real SmolLM2 run uses."""

from __future__ import annotations

import math
import pickle

import pytest
from transformers import AutoModelForCausalLM

from lmlab.ilm.format import ILM_SPECIAL_TOKENS, MASK_TOKENS, MaskType, mask_document
from lmlab.ilm.sequences import IlmTokens, encode_examples
from lmlab.tokenization import decode_continuation, drops_leading_space, prepare_tokenizer, word_mark_id
from tests.ilm.train_helpers import DOCS, masked_docs
from tests.tiny_llama import tiny_llama_dir

WORD = MASK_TOKENS[MaskType.WORD]


@pytest.fixture()
def llama_dir(tmp_path):
    return tiny_llama_dir(tmp_path / "llama", DOCS)


@pytest.fixture()
def sp_tokenizer(llama_dir):
    """What the ilm_tokenizer stage writes for a real base: its own tokenizer + pad + the 7 ILM tokens."""
    return prepare_tokenizer(str(llama_dir), [], 300, ILM_SPECIAL_TOKENS, is_tiny=False)


def test_special_tokens_added_to_a_metaspace_tokenizer_are_single_ids(sp_tokenizer):
    assert drops_leading_space(sp_tokenizer) and word_mark_id(sp_tokenizer) is not None
    assert sp_tokenizer.pad_token == "</s>"
    tokens = IlmTokens.from_tokenizer(sp_tokenizer)
    assert len({tokens.start_infill, tokens.end_infill, *tokens.masks.values()}) == 7
    ids = sp_tokenizer(f"I{WORD} in a small house", add_special_tokens=False)["input_ids"]
    assert ids.count(tokens.masks[int(MaskType.WORD)]) == 1
    assert sp_tokenizer.decode(ids) == f"I{WORD} in a small house"


def test_segments_encode_as_the_infill_prompt_does(sp_tokenizer):
    """Training encodes each context piece alone; a piece after a span starting with punctuation must
    not gain the lone word mark ▁ that the same text never gets inside the prompt."""
    doc = "I live in a small house, and my family too."
    start = doc.index("house")
    spans = [(int(MaskType.WORD), start, len("house"))]
    tokens = IlmTokens.from_tokenizer(sp_tokenizer)
    seq = encode_examples([doc], [spans], sp_tokenizer, tokens, 128)["input_ids"][0]
    context, _ = mask_document(doc, spans)
    prompt = sp_tokenizer(context, add_special_tokens=False)["input_ids"]
    assert seq[: len(prompt)] == prompt
    assert seq[len(prompt)] == tokens.start_infill


def test_answers_keep_their_leading_space(sp_tokenizer):
    ids = sp_tokenizer(" house", add_special_tokens=False)["input_ids"]
    assert sp_tokenizer.decode(ids, skip_special_tokens=True) == "house"  # what a plain decode loses
    end = IlmTokens.from_tokenizer(sp_tokenizer).end_infill
    assert decode_continuation(sp_tokenizer, [*ids, end]) == " house"


@pytest.mark.slow
def test_ilm_trains_saves_evaluates_and_infills_a_llama(llama_dir, sp_tokenizer, tmp_path):
    from lmlab.ilm.evaluation import EvalParams, evaluate_matrix
    from lmlab.ilm.infillers import load_ilm
    from lmlab.ilm.training import IlmTrainParams, train_ilm
    from lmlab.modeling import ModelSpec
    from lmlab.training import TrainingParams

    base_vocab = AutoModelForCausalLM.from_pretrained(llama_dir).get_input_embeddings().num_embeddings
    assert len(sp_tokenizer) == base_vocab + 7  # the 7 ILM tokens (pad is eos, not a new token)
    train, valid = masked_docs(DOCS, 4), masked_docs(DOCS[:3], 2, seed=1)
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(train))
    params = IlmTrainParams(
        max_length=128, max_train_examples=None, max_eval_examples=6, num_samples=1, sample_max_new_tokens=4,
        trainer=TrainingParams(max_steps=4, batch_size=4, eval_batch_size=8, lr=1e-2, warmup_ratio=0.0,
                               eval_steps=2, save_steps=2, logging_steps=1, device="cpu"))
    summary = train_ilm(train, valid, sp_tokenizer, ModelSpec(str(llama_dir)), params, 0,
                        checkpoint_dir=tmp_path / "ckpt", live_dir=None, out_dir=tmp_path / "model",
                        resolved_params={"test": 1}, inputs=[tmp_path / "train.pkl"])
    step0, last = summary["eval_step0"], summary["eval_last"]
    assert step0["infill_count"] > 0 and last["infill_loss"] < step0["infill_loss"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.get_input_embeddings().num_embeddings == len(sp_tokenizer)
    results = evaluate_matrix({"A1": tmp_path / "model"}, {"A1": masked_docs(DOCS, 2, seed=3)},
                              EvalParams(max_documents=6, max_examples_per_document=2, max_length=128, batch_size=4,
                                         bootstrap_resamples=100, device="cpu"))
    assert math.isfinite(results["A1"]["A1"]["infill_textonly_ppl"])
    infiller = load_ilm(tmp_path / "model", device="cpu")
    filled = infiller.infill([f"I live in a small{WORD} with my family."], max_new_tokens=6, batch_size=1)[0]
    assert len(filled.answers) == 1  # kept even if unterminated within 6 tokens
    assert filled.text == f"I live in a small{filled.answers[0]} with my family."


def test_byte_level_tokenizers_are_left_alone():
    """The embedded default's BPE keeps spaces: no word mark handling, answers decoded plainly."""
    from tests.ilm.train_helpers import ilm_tokenizer

    tok = ilm_tokenizer()
    assert not drops_leading_space(tok) and word_mark_id(tok) is None
    ids = tok(" house", add_special_tokens=False)["input_ids"]
    assert decode_continuation(tok, ids) == tok.decode(ids, skip_special_tokens=True) == " house"
