"""Batched ILM generation with ``model.generate``: equality with per-sample greedy decoding, stopping, loading."""

from __future__ import annotations

import json

import pytest
import torch

from lmlab.errors import InputError
from lmlab.ilm.format import fill_context
from lmlab.ilm.infill import (
    StopAfterAnswers,
    generate_infills,
    generate_reference,
    nucleus_filter,
    split_answers,
    trim_generation,
)
from lmlab.ilm.infillers import load_ilm
from tests.ilm.infill_helpers import make_ilm_dir

# the decoding must not go through deprecated transformers APIs (e.g. ``past_key_values``, removed in 5.40)
pytestmark = pytest.mark.filterwarnings("error::FutureWarning")

CONTEXTS = [
    "I live in a small<|infill_word|> with my family. My house have three rooms.",
    "Dear Anna, how<|infill_word|> you? I am fine. Yesterday I go to the<|infill_word|> with my friends.",
    "My<|infill_word|> is Paulo and I am from<|infill_word|>. I like<|infill_word|> and music.",
    "The product I bought arrived<|infill_ngram|>.",
    "In my opinion,<|infill_word|> government should invest in public transport, although it is"
    "<|infill_word|>. I live in a small house with my family. My house have three rooms. Dear Anna.",
    "I<|infill_sentence|>",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one torch thread avoids OpenMP spinning on this shared CPU (results do not change)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained_ilm(tmp_path_factory):
    return load_ilm(make_ilm_dir(tmp_path_factory.mktemp("ilm") / "trained", train_steps=60), device="cpu")


@pytest.fixture(scope="module")
def random_ilm(tmp_path_factory):
    return load_ilm(make_ilm_dir(tmp_path_factory.mktemp("ilm") / "random", train_steps=0, seed=3), device="cpu")


def _prompts(ilm):
    encoded = [ilm.encode_context(c) for c in CONTEXTS]
    return [ids + [ilm.start_id] for ids in encoded], [ilm.count_masks(ids) for ids in encoded]


@pytest.fixture(scope="module")
def reference_runs(trained_ilm):
    """Prompts, k and the reference-style (per-sample, no cache) greedy generations."""
    prompts, ks = _prompts(trained_ilm)
    reference = [generate_reference(trained_ilm.model, p, k, trained_ilm.end_id, 24, trained_ilm.max_positions)
                 for p, k in zip(prompts, ks)]
    return prompts, ks, reference


@pytest.mark.parametrize(("batch_size", "prefill"), [(1, "rows"), (4, "rows"), (4, "batch"), (32, "rows"), (32, "batch")])
def test_batched_equals_per_sample_greedy(trained_ilm, reference_runs, batch_size, prefill):
    prompts, ks, reference = reference_runs
    assert sorted(set(ks)) == [1, 2, 3] and len({len(p) for p in prompts}) == len(prompts)
    batched = generate_infills(trained_ilm.model, prompts, ks, trained_ilm.end_id, trained_ilm.tokenizer.pad_token_id,
                               max_new_tokens=24, max_positions=trained_ilm.max_positions, batch_size=batch_size,
                               prefill=prefill)
    assert batched == reference
    # the trained model stops rows at their k-th end token, at different lengths
    stopped = [g for g, k in zip(batched, ks) if g.count(trained_ilm.end_id) == k]
    assert stopped and all(g[-1] == trained_ilm.end_id for g in stopped)
    assert len({len(g) for g in batched}) > 1


def test_batched_equals_reference_at_length_limits(random_ilm):
    prompts, ks = _prompts(random_ilm)
    limit = max(len(p) for p in prompts) + 3  # the longest prompt gets 3 tokens, others up to max_new_tokens
    reference = [generate_reference(random_ilm.model, p, k, random_ilm.end_id, 10, limit) for p, k in zip(prompts, ks)]
    for batch_size, prefill in ((3, "rows"), (3, "batch"), (32, "rows")):
        batched = generate_infills(random_ilm.model, prompts, ks, random_ilm.end_id, 0, max_new_tokens=10,
                                   max_positions=limit, batch_size=batch_size, prefill=prefill)
        assert batched == reference
    assert [len(g) for g in batched] == [min(10, limit - len(p)) if random_ilm.end_id not in g else len(g)
                                         for g, p in zip(batched, prompts)]


def test_rows_near_the_model_position_limit_are_not_run_past_it(random_ilm):
    """``generate`` runs every row of a batch as long as its longest budget: rows near the
    model's last position must not share a batch that would feed positions past it."""
    limit = random_ilm.max_positions
    base = random_ilm.encode_context(CONTEXTS[0])
    filler = random_ilm.encode_context(" I live in a small house with my family.")
    prompts = []
    for length in (60, limit - 12, limit - 5, limit - 2, limit - 1):
        ids = base[:]
        while len(ids) < length - 1:
            ids += filler
        prompts.append(ids[len(ids) - (length - 1):] + [random_ilm.start_id])
        assert len(prompts[-1]) == length
    ks = [1] * len(prompts)
    reference = [generate_reference(random_ilm.model, p, k, random_ilm.end_id, 10, limit) for p, k in zip(prompts, ks)]
    for prefill in ("rows", "batch"):
        batched = generate_infills(random_ilm.model, prompts, ks, random_ilm.end_id, 0, max_new_tokens=10,
                                   max_positions=limit, batch_size=32, prefill=prefill)
        assert batched == reference
    assert [len(g) for g in batched] == [min(10, limit - len(p)) if random_ilm.end_id not in g else len(g)
                                         for g, p in zip(batched, prompts)]


def test_stop_after_answers_per_row_blanks_and_budgets():
    end = 9
    prompt = [[0, 5, 5], [5, 5, 5], [0, 0, 5]]  # 3 left-padded prompt columns
    generated = torch.tensor([row + gen for row, gen in zip(prompt, [[1, end], [end, 2], [3, 4]])])
    # one blank each: rows 0 and 1 are done (row 1's end token came first), row 2 is not
    assert StopAfterAnswers(end, 3, 1)(generated, None).tolist() == [True, True, False]
    # per-row blanks, and a budget of 2 tokens for row 2
    assert StopAfterAnswers(end, 3, [2, 1, 1], budgets=[8, 8, 2])(generated, None).tolist() == [False, True, True]
    # end tokens in the prompt columns do not count
    assert StopAfterAnswers(end, 3, 1)(torch.tensor([[end, end, end, 1]]), None).tolist() == [False]


def test_trim_generation_cuts_where_the_row_stopped():
    end = 9
    assert trim_generation([1, end, 2, end, 3], 1, end) == [1, end]
    assert trim_generation([1, end, 2, end, 3], 2, end) == [1, end, 2, end]
    assert trim_generation([1, 2, 3, 4], 2, end, budget=3) == [1, 2, 3]
    assert trim_generation([1, end, 2], 1, end, budget=1) == [1]


def test_no_mask_or_no_room_generates_nothing(random_ilm):
    prompt = random_ilm.encode_context("no masks here") + [random_ilm.start_id]
    out = generate_infills(random_ilm.model, [prompt, prompt], [0, 1], random_ilm.end_id, max_new_tokens=5,
                           max_positions=len(prompt))
    assert out == [[], []]


def test_split_answers_stops_after_k_and_drops_unterminated_tail():
    end = 9
    assert split_answers([1, 2, end, 3, end, 4, end], 2, end) == [[1, 2], [3]]
    assert split_answers([1, end, 5, 6], 2, end) == [[1]]
    assert split_answers([end, end], 2, end) == [[], []]


def test_split_answers_can_keep_the_unterminated_tail():
    end = 9
    assert split_answers([1, end, 5, 6], 2, end, keep_unterminated=True) == [[1], [5, 6]]
    assert split_answers([5, 6, 7], 1, end, keep_unterminated=True) == [[5, 6, 7]]
    assert split_answers([1, end], 2, end, keep_unterminated=True) == [[1]]  # nothing generated for the 2nd
    assert split_answers([1, end, 2, end, 3], 2, end, keep_unterminated=True) == [[1], [2]]


def test_infill_fills_context_with_answers(trained_ilm):
    results = trained_ilm.infill(CONTEXTS[:3], max_new_tokens=24, batch_size=2)
    for context, result in zip(CONTEXTS, results):
        assert result.text == fill_context(context, result.answers)
        assert len(result.answers) <= trained_ilm.count_masks(trained_ilm.encode_context(context))
        assert result.unterminated in (0, 1)  # at most the last answer is still open


def test_unterminated_answers_are_kept_as_generated_and_counted(random_ilm):
    """A random model never writes <|endofinfill|>: its answer is the whole budget, flagged as unterminated."""
    kept = random_ilm.infill(CONTEXTS[:2], max_new_tokens=5)
    dropped = random_ilm.infill(CONTEXTS[:2], max_new_tokens=5, keep_unterminated=False)
    for k, d in zip(kept, dropped):
        assert (k.terminated, k.unterminated, len(k.answers)) == (0, 1, 1)
        assert d.answers == [] and d.unterminated == 0


def test_nucleus_filter_keeps_reference_top_set():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.97, 0.01, 0.01, 0.01]]))
    kept = torch.isfinite(nucleus_filter(logits, 0.9))
    # row 0: cumsum 0.5, 0.8 < 0.9 -> 2 tokens (the one crossing 0.9 is excluded); row 1: at least one
    assert kept.tolist() == [[True, True, False, False], [True, False, False, False]]


def test_one_token_prompts_fall_back_to_the_batch_prefill(random_ilm):
    """``rows`` prefill caches all but each prompt's last token: a one-token prompt has nothing to cache."""
    mask = next(iter(random_ilm.mask_ids))
    prompts = [[random_ilm.start_id], [mask, random_ilm.start_id]]
    reference = [generate_reference(random_ilm.model, p, 1, random_ilm.end_id, 4, random_ilm.max_positions)
                 for p in prompts]
    out = generate_infills(random_ilm.model, prompts, [1, 1], random_ilm.end_id, max_new_tokens=4,
                           max_positions=random_ilm.max_positions, prefill="rows")
    assert out == reference


def test_nucleus_sampling_is_seeded(trained_ilm):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = trained_ilm.infill(CONTEXTS, decoding="nucleus", seed=5, max_new_tokens=12)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was
    b = trained_ilm.infill(CONTEXTS, decoding="nucleus", seed=5, max_new_tokens=12)
    assert a == b
    others = [trained_ilm.infill(CONTEXTS, decoding="nucleus", seed=seed, max_new_tokens=12) for seed in (6, 7)]
    assert any(o != a for o in others)


def test_nucleus_sampling_draws_only_from_the_reference_top_set(trained_ilm):
    """With a tiny ``top_p`` the reference rule keeps one token: sampling is then greedy decoding."""
    greedy = trained_ilm.infill(CONTEXTS, max_new_tokens=12)
    assert trained_ilm.infill(CONTEXTS, decoding="nucleus", top_p=1e-6, seed=3, max_new_tokens=12) == greedy


def test_load_ilm_rejects_dirs_without_the_special_token_map(tmp_path, tiny_model_dir):
    with pytest.raises(InputError, match="ilm_special_tokens.json"):
        load_ilm(tiny_model_dir)
    with pytest.raises(InputError, match="does not exist"):
        load_ilm(tmp_path / "missing")


def test_load_ilm_rejects_a_map_that_disagrees_with_the_tokenizer(tmp_path):
    out = make_ilm_dir(tmp_path / "ilm")
    mapping = json.loads((out / "ilm_special_tokens.json").read_text())
    ids = sorted(mapping)
    mapping[ids[0]], mapping[ids[1]] = mapping[ids[1]], mapping[ids[0]]
    (out / "ilm_special_tokens.json").write_text(json.dumps(mapping))
    with pytest.raises(InputError, match="disagrees"):
        load_ilm(out)
