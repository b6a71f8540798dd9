"""ILM sequence layout, target types, losses, padding and example sampling."""

from __future__ import annotations

import json

import pytest
import torch

from lmlab.errors import InputError
from lmlab.ilm.format import END_INFILL, MASK_TOKENS, START_INFILL, MaskType, mask_document
from lmlab.ilm.sequences import (
    SPECIAL_TOKENS_FILE,
    IlmCollator,
    IlmTokens,
    TargetType,
    build_dataset,
    combine_losses,
    context_segments,
    encode_examples,
    per_example_sums,
    sample_example_refs,
)
from tests.ilm.train_helpers import ilm_tokenizer, masked_docs

DOC = "She ate cereal for breakfast. I can't go."


@pytest.fixture(scope="module")
def tok():
    return ilm_tokenizer()


def _encode(tok, doc, spans, max_length=256):
    out = encode_examples([doc], [spans], tok, IlmTokens.from_tokenizer(tok), max_length)
    return {k: v[0] for k, v in out.items()}


def test_layout_masks_separator_and_aligned_answers(tok):
    spans = [(int(MaskType.WORD), 8, 6), (int(MaskType.SENTENCE), 30, 11)]  # "cereal", "I can't go."
    row = _encode(tok, DOC, spans)
    ids, types = row["input_ids"], row["target_types"]
    t = IlmTokens.from_tokenizer(tok)
    sep = ids.index(t.start_infill)
    context, answers = mask_document(DOC, spans)
    assert tok.decode(ids[:sep]) == context == "She ate<|infill_word|> for breakfast.<|infill_sentence|>"
    assert [i for i in ids[:sep] if i in t.masks.values()] == [t.masks[4], t.masks[2]]
    # answers follow the separator, each closed by <|endofinfill|>, with their leading space
    tail = ids[sep + 1:]
    ends = [i for i, x in enumerate(tail) if x == t.end_infill]
    assert len(ends) == 2 and ends[-1] == len(tail) - 1
    assert [tok.decode(tail[:ends[0]]), tok.decode(tail[ends[0] + 1:ends[1]])] == answers == [" cereal", " I can't go."]
    # target types: CONTEXT / CONTEXT_SPECIAL for masks / SEP / INFILL / INFILL_SPECIAL for the ends
    assert types[sep] == TargetType.SEP
    for i, x in enumerate(ids):
        if x in t.masks.values():
            assert types[i] == TargetType.CONTEXT_SPECIAL
        elif x == t.end_infill:
            assert types[i] == TargetType.INFILL_SPECIAL
    assert set(types[:sep]) == {TargetType.CONTEXT, TargetType.CONTEXT_SPECIAL}
    assert set(types[sep + 1:]) == {TargetType.INFILL, TargetType.INFILL_SPECIAL}
    assert row["split_boundary"] is False and row["truncated"] is False and row["length"] == len(ids)


def test_span_boundary_inside_a_token_is_kept_and_counted(tok):
    # nltk splits "can't" into "ca" + "n't"; when BPE has a token across that boundary the reference
    # drops the example. Build the same situation from whatever multi-char token this BPE has.
    offsets = tok(DOC, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    start, end = next((s + (DOC[s] == " "), e) for s, e in offsets if e - s - (DOC[s] == " ") >= 2)
    cut = start + 1
    spans = [(int(MaskType.WORD), start, cut - start), (int(MaskType.WORD), cut, end - cut)]
    row = _encode(tok, DOC, spans)
    assert row["split_boundary"] is True
    t = IlmTokens.from_tokenizer(tok)
    ids = row["input_ids"]
    tail = ids[ids.index(t.start_infill) + 1:]
    assert tok.decode(tail).split(END_INFILL)[:2] == mask_document(DOC, spans)[1]
    whole = _encode(tok, DOC, [(int(MaskType.WORD), start, end - start)])
    assert whole["split_boundary"] is False


def test_empty_example_and_truncation(tok):
    row = _encode(tok, DOC, [])
    assert tok.convert_ids_to_tokens(row["input_ids"][-1]) == START_INFILL
    assert set(row["target_types"][:-1]) == {TargetType.CONTEXT}
    short = _encode(tok, DOC, [(int(MaskType.WORD), 8, 6)], max_length=5)
    assert short["truncated"] is True and len(short["input_ids"]) == 5 == short["length"]


def test_context_segments_agree_with_mask_document(tok):
    for doc, examples in masked_docs(["A man, a plan, a canal: Panama. Yes it is."], 5, seed=3):
        for spans in examples:
            pieces, answers, _ = context_segments(doc, spans)
            rebuilt = "".join(p + (MASK_TOKENS[MaskType(s[0])] if i < len(spans) else "")
                              for i, (p, s) in enumerate(zip(pieces, [*spans, None])))
            assert (rebuilt, answers) == mask_document(doc, spans)


def test_losses_per_type_and_context_toggle():
    types = torch.tensor([[1, 1, 2, 3, 4, 4, 5, 0]])
    nll = torch.tensor([[1.0, 3.0, 9.0, 9.0, 2.0, 4.0, 6.0, 9.0]])
    sums = per_example_sums(nll, types)[0].tolist()
    assert sums == [4.0, 2.0, 12.0, 3.0, 6.0, 2.0]  # context, infill (+end), infill_textonly
    assert combine_losses(nll, types, True, "sum_of_means").item() == pytest.approx(2.0 + 4.0)
    assert combine_losses(nll, types, False, "sum_of_means").item() == pytest.approx(4.0)
    assert combine_losses(nll, types, True, "token_mean").item() == pytest.approx(16.0 / 5)
    changed = nll.clone()
    changed[0, 0] = 100.0  # a context token: only matters when training on context
    assert combine_losses(changed, types, False, "sum_of_means").item() == pytest.approx(4.0)
    assert combine_losses(changed, types, True, "sum_of_means").item() > 40


def test_collator_pads_dynamically_with_attention_mask(tok):
    ds = build_dataset(masked_docs(["Hi.", "A much longer document with many words in it."], 1), tok,
                       IlmTokens.from_tokenizer(tok), 128)
    batch = IlmCollator(tok.pad_token_id)([ds[0], ds[1]])
    width = max(ds["length"])
    assert batch["input_ids"].shape == (2, width)
    assert batch["attention_mask"].sum(dim=1).tolist() == ds["length"]
    short = int(torch.argmin(batch["attention_mask"].sum(dim=1)))
    assert (batch["target_types"][short][batch["attention_mask"][short] == 0] == TargetType.PAD).all()
    assert IlmCollator(tok.pad_token_id, pad_to=64)([ds[0]])["input_ids"].shape == (1, 64)


def test_sample_example_refs_is_seeded_and_valid():
    masked = masked_docs(["one two three", "four five six seven", "eight nine"], 4)
    refs = sample_example_refs(masked, 5, seed=1)
    assert refs == sample_example_refs(masked, 5, seed=1) and len(set(refs)) == 5
    assert all(0 <= e < len(masked[d][1]) for d, e in refs)
    assert sample_example_refs(masked, 100, seed=1) is None


def test_special_token_map_roundtrip_and_missing(tok, tmp_path):
    t = IlmTokens.from_tokenizer(tok)
    (tmp_path / SPECIAL_TOKENS_FILE).write_text(json.dumps(t.id_to_token()))
    assert IlmTokens.from_model_dir(tmp_path, tok) == t
    assert set(t.id_to_token().values()) >= {START_INFILL, END_INFILL, *MASK_TOKENS.values()}
    with pytest.raises(InputError, match="special-token map"):
        IlmTokens.from_model_dir(tmp_path / "nothing")


def test_fast_encoding_paths_match_the_plain_tokenizer_call(tok):
    """The direct Rust-backend path gives what ``tokenizer(...)`` gives; the bisect test = every pair."""
    import random

    from lmlab.ilm.sequences import _encode_batch, _splits_a_token

    texts = [DOC, " I can't go.", "", "Ünïcode naïve café — ok", "a  b\tc\n"]
    plain = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    assert _encode_batch(tok, texts) == plain["input_ids"]
    assert [list(map(tuple, o)) for o in _encode_batch(tok, texts, offsets=True)] == \
        [list(map(tuple, o)) for o in plain["offset_mapping"]]
    rng = random.Random(0)
    for _ in range(300):
        offsets = sorted((a, a + rng.randint(0, 4)) for a in rng.sample(range(60), 12))
        ranges = [tuple(sorted(rng.sample(range(64), 2))) for _ in range(rng.randint(1, 3))]
        brute = any(s < b < e for s, e in offsets for r in ranges for b in r)
        assert _splits_a_token(offsets, ranges) is brute
