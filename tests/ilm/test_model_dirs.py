"""ILM model directories: the reference's layout loads (model, tokenizer, ids) through lmlab's one loader,
and lmlab exports models and masked pickles to the reference's formats; round trips keep the logits."""

from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from lmlab.errors import InputError
from lmlab.ilm.cli import main
from lmlab.ilm.evaluation import EvalParams, evaluate_matrix
from lmlab.ilm.format import ILM_SPECIAL_TOKENS, MaskType
from lmlab.ilm.infill_eval import InfillEvalParams, run_infill_eval
from lmlab.ilm.infillers import load_ilm
from lmlab.ilm.model_dirs import dir_layout, export_reference_dir, load_ilm_dir
from lmlab.ilm.pickles import load_pickle, write_examples_pickle
from tests.ilm.infill_helpers import ILM_TEXTS, make_ilm_dir
from tests.ilm.reference_helpers import (
    base_vocab_size,
    make_gpt2_sized_tokenizer_files,
    make_gpt2_tokenizer_files,
    make_reference_dir,
)

TEXT = "I live<|infill_word|> a small house.<|startofinfill|> in<|endofinfill|>"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def gpt2_tokenizer(tmp_path_factory) -> Path:
    return make_gpt2_tokenizer_files(tmp_path_factory.mktemp("tok") / "gpt2-files")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, gpt2_tokenizer):
    """``(dir, in-memory model)`` of a reference-layout ILM (tokenizer files elsewhere)."""
    out = tmp_path_factory.mktemp("ref") / "efcamdat_A1_ilm"
    return out, make_reference_dir(out, base_vocab_size(gpt2_tokenizer))


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


def test_reference_dir_loads_with_the_named_tokenizer(reference, gpt2_tokenizer):
    ref_dir, original = reference
    assert dir_layout(ref_dir) == "reference"
    loaded = load_ilm_dir(ref_dir, tokenizer_source=str(gpt2_tokenizer))
    base = base_vocab_size(gpt2_tokenizer)
    assert loaded.layout == "reference" and loaded.tokenizer_source == str(gpt2_tokenizer)
    assert (loaded.tokens.start_infill, loaded.tokens.end_infill) == (base, base + 1)
    assert loaded.tokens.masks == {int(t): base + 2 + i for i, t in enumerate(MaskType)}
    ids = loaded.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert {base, base + 1, loaded.tokens.masks[int(MaskType.WORD)]} <= set(ids)  # each ILM token is one id
    assert torch.equal(_logits(loaded.model, ids), _logits(original, ids))


def test_the_write_up_layout_with_tokenizer_files_in_the_dir_needs_no_source(reference, gpt2_tokenizer, tmp_path):
    ref_dir, original = reference
    local = shutil.copytree(ref_dir, tmp_path / "with_tokenizer")
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(gpt2_tokenizer / name, local / name)
    loaded = load_ilm_dir(local)
    assert loaded.tokenizer_source == str(local)
    ids = loaded.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert torch.equal(_logits(loaded.model, ids), _logits(original, ids))


def test_a_missing_or_mismatched_tokenizer_is_refused(reference, tmp_path):
    ref_dir, _ = reference
    with pytest.raises(InputError, match="does not save its tokenizer"):
        load_ilm_dir(ref_dir, tokenizer_source=str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="does not save its tokenizer"):
        load_ilm_dir(ref_dir)  # default gpt2: not in the (offline, empty) HF cache
    other = make_gpt2_tokenizer_files(tmp_path / "other", vocab_size=320)  # another base vocabulary size
    with pytest.raises(InputError, match="not the tokenizer this model was trained with"):
        load_ilm_dir(ref_dir, tokenizer_source=str(other))


def test_a_map_without_the_ilm_tokens_is_refused(reference, gpt2_tokenizer, tmp_path):
    ref_dir, _ = reference
    bad = shutil.copytree(ref_dir, tmp_path / "bad")
    with open(bad / "additional_ids_to_tokens.pkl", "wb") as handle:
        pickle.dump({300: "<|startofinfill|>", 301: "<|endofinfill|>", 302: "<|infill_custom|>"}, handle)
    with pytest.raises(InputError, match="not the 7 ILM tokens"):
        load_ilm_dir(bad, tokenizer_source=str(gpt2_tokenizer))
    (bad / "additional_ids_to_tokens.pkl").unlink()
    with pytest.raises(InputError, match="special-token map"):
        load_ilm_dir(bad)


def test_export_of_an_lmlab_dir_round_trips_with_identical_logits(tmp_path):
    lmlab_dir = make_ilm_dir(tmp_path / "lmlab", seed=2)
    info = export_reference_dir(lmlab_dir, tmp_path / "exported")
    out = tmp_path / "exported"
    assert {"pytorch_model.bin", "config.json", "additional_ids_to_tokens.pkl"} <= {p.name for p in out.iterdir()}
    with open(out / "additional_ids_to_tokens.pkl", "rb") as handle:
        mapping = pickle.load(handle)  # what the reference's code does
    assert list(mapping.values()) == list(ILM_SPECIAL_TOKENS)  # reference order: start, end, document ... word
    assert sorted(mapping) == list(range(min(mapping), min(mapping) + 7))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["n_ctx"] == config["n_positions"]
    state = torch.load(out / "pytorch_model.bin", weights_only=True)
    assert "transformer.wte.weight" in state and "lm_head.weight" in state
    assert info["reference_tokenizer_compatible"] is False  # a tiny model's own BPE, not GPT-2's
    original, exported = load_ilm_dir(lmlab_dir), load_ilm_dir(out)
    assert (original.layout, exported.layout) == ("lmlab", "reference")
    assert exported.tokens == original.tokens
    ids = original.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert exported.tokenizer(TEXT, add_special_tokens=False)["input_ids"] == ids
    assert torch.equal(_logits(exported.model, ids), _logits(original.model, ids))


def test_export_round_trip_gives_identical_infills(tmp_path):
    """ilm_train saves ``use_cache: false`` in config.json (true in generation_config.json, which the
    reference layout lacks): decoding must not depend on it."""
    lmlab_dir = make_ilm_dir(tmp_path / "lmlab", train_steps=30, seed=1)
    config = json.loads((lmlab_dir / "config.json").read_text())
    (lmlab_dir / "config.json").write_text(json.dumps({**config, "use_cache": False}))
    export_reference_dir(lmlab_dir, tmp_path / "exported")
    assert not (tmp_path / "exported" / "generation_config.json").exists()
    contexts = [ILM_TEXTS[i][:20] + "<|infill_word|>" + ILM_TEXTS[i][25:] for i in range(len(ILM_TEXTS))]
    original = load_ilm(lmlab_dir, "cpu").infill(contexts, max_new_tokens=24)
    assert load_ilm(tmp_path / "exported", "cpu").infill(contexts, max_new_tokens=24) == original


def test_export_of_a_gpt2_sized_model_is_reference_compatible(tmp_path):
    tokenizer = make_gpt2_sized_tokenizer_files(tmp_path / "gpt2-sized")
    ref_dir = tmp_path / "ref"
    original = make_reference_dir(ref_dir, 50257, n_embd=8, n_layer=1, n_positions=32)
    info = export_reference_dir(ref_dir, tmp_path / "again", str(tokenizer))
    assert info["reference_tokenizer_compatible"] is True
    assert info["special_token_ids"] == {str(50257 + i): t for i, t in enumerate(ILM_SPECIAL_TOKENS)}
    ids = [5, 50262, 7, 50257, 9, 50258]
    assert torch.equal(_logits(load_ilm_dir(tmp_path / "again").model, ids), _logits(original, ids))


def test_infill_eval_and_perplexity_eval_accept_a_reference_dir(reference, gpt2_tokenizer, tmp_path):
    ref_dir, _ = reference
    csv = tmp_path / "test.csv"
    csv.write_text("id,cefr,text\n" + "".join(f"t{i},A1,\"{t}\"\n" for i, t in enumerate(ILM_TEXTS)), encoding="utf-8")
    report = run_infill_eval(InfillEvalParams(test_csv=str(csv), models={"ref": f"ilm:{ref_dir}"}, max_new_tokens=3,
                                              device="cpu", reference_tokenizer=str(gpt2_tokenizer)))
    assert report["results"]["overall"]["ref"]["n"] == len(ILM_TEXTS)
    # the same through `lmlab infill-eval`, with the reference's reading of unterminated answers
    outs = [tmp_path / "e.json", tmp_path / "m.json", tmp_path / "p.jsonl"]
    code = main(["infill-eval", "--csv", str(csv), "--model", f"ref=ilm:{ref_dir}", "--reference-tokenizer",
                 str(gpt2_tokenizer), "--unterminated", "drop", "--overlap", "multiset", "--max-new-tokens", "3",
                 "--device", "cpu", "--out", str(outs[0]), "--metrics", str(outs[1]), "--predictions", str(outs[2])],
                stdout=io.StringIO())
    cli_report = json.loads(outs[0].read_text())
    assert code == 0 and cli_report["config"]["unterminated"] == "drop" and cli_report["config"]["overlap"] == "multiset"
    assert cli_report["results"]["overall"]["ref"]["n_unterminated"] == 0
    masked = [(ILM_TEXTS[0], [[(int(MaskType.WORD), 2, 4)], [(int(MaskType.NGRAM), 7, 9)]]),
              (ILM_TEXTS[3], [[(int(MaskType.WORD), 3, 4)]])]
    results = evaluate_matrix({"ref": ref_dir}, {"A1": masked},
                              EvalParams(device="cpu", bootstrap_resamples=100, reference_tokenizer=str(gpt2_tokenizer)))
    summary = results["ref"]["A1"]
    assert summary["examples"] == 3 and summary["infill_textonly_count"] > 0
    assert 1 < summary["infill_textonly_ppl"] < 10 * base_vocab_size(gpt2_tokenizer)  # a random model: ~ vocab size


def test_cli_infill_and_export_reference(reference, gpt2_tokenizer, tmp_path):
    ref_dir, _ = reference
    out = io.StringIO()
    code = main(["infill", "--model", str(ref_dir), "--tokenizer", str(gpt2_tokenizer), "--device", "cpu",
                 "--max-new-tokens", "3", "--text", "I live in a [MASK:word] house."], stdout=out)
    assert code == 0 and out.getvalue().startswith("I live in a")
    assert main(["infill", "--model", str(ref_dir), "--device", "cpu", "--text", "a [MASK]"], stdout=io.StringIO()) == 2

    lmlab_dir = make_ilm_dir(tmp_path / "lmlab")
    assert main(["export-reference", "model", str(lmlab_dir), str(tmp_path / "exported")], stdout=io.StringIO()) == 0
    assert load_ilm(tmp_path / "exported", "cpu").start_id == load_ilm(lmlab_dir, "cpu").start_id

    items = [(ILM_TEXTS[0], [[(int(MaskType.WORD), 2, 4), (int(MaskType.NGRAM), 7, 9)], []]), (ILM_TEXTS[1], [])]
    masked_dir = tmp_path / "masked"
    masked_dir.mkdir()
    for split in ("train", "test"):
        write_examples_pickle(masked_dir / f"{split}.pkl", items)
    assert main(["export-reference", "examples", str(masked_dir), str(tmp_path / "ref_pkl")], stdout=io.StringIO()) == 0
    for split in ("train", "test"):
        data = (tmp_path / "ref_pkl" / f"{split}.pkl").read_bytes()
        assert b"MaskHierarchicalType" in data and b"ilm.mask.hierarchical" in data  # the reference's enum
        assert [(d, [[tuple(s) for s in e] for e in ex]) for d, ex in load_pickle(tmp_path / "ref_pkl" / f"{split}.pkl")] \
            == [(d, [[tuple(s) for s in e] for e in ex]) for d, ex in items]
    assert main(["export-reference", "examples", str(tmp_path / "lmlab"), str(tmp_path / "x")],
                stdout=io.StringIO()) == 2  # no *.pkl there
