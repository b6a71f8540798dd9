"""Batched greedy generation: left padding for causal models, continuation only, stop at EOS."""

from __future__ import annotations

from lmlab.generation import cut_at_eos, generate_continuations, pad_batch


def test_cut_at_eos_and_pad_batch():
    assert cut_at_eos([5, 6, 0, 7], eos_id=0) == [5, 6]
    assert cut_at_eos([1, 5, 1, 6], eos_id=0, pad_id=1) == [5, 6]
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=9, side="left")
    assert ids.tolist() == [[1, 2, 3], [9, 9, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=9, side="right")
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_batched_left_padded_equals_one_by_one(tiny_gpt2, tiny_tokenizer):
    prompts = [tiny_tokenizer(t, add_special_tokens=False)["input_ids"]
               for t in ("Dear Anna, how are you?", "My name", "In my opinion, the government should invest")]
    batched = generate_continuations(tiny_gpt2, tiny_tokenizer, prompts, "causal", max_new_tokens=8, batch_size=3)
    single = [generate_continuations(tiny_gpt2, tiny_tokenizer, [p], "causal", max_new_tokens=8)[0] for p in prompts]
    assert batched == single
    # Continuation only: the prompt text is not echoed back.
    full = tiny_tokenizer.decode(prompts[0])
    assert not batched[0].startswith(full)
