"""Model factory: tiny configs and the hub-name / local-directory path are one code path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmlab.errors import InputError
from lmlab.modeling import ModelSpec, build_model, load_model, model_kind


@pytest.mark.parametrize(("name", "kind"), [("tiny-gpt2", "causal"), ("tiny-gpt-neox", "causal"), ("tiny-t5", "seq2seq")])
def test_tiny_models_are_sized_to_tokenizer_and_seeded(tiny_tokenizer, name: str, kind: str) -> None:
    spec = ModelSpec(name, n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=64)
    a = build_model(spec, tiny_tokenizer, seed=3)
    b = build_model(spec, tiny_tokenizer, seed=3)
    c = build_model(spec, tiny_tokenizer, seed=4)
    assert a.get_input_embeddings().num_embeddings == len(tiny_tokenizer)
    assert model_kind(name) == kind
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_local_directory_goes_through_from_pretrained(tiny_model_dir: Path, tiny_tokenizer, tiny_gpt2) -> None:
    from lmlab.tokenization import add_special_tokens

    tokenizer = type(tiny_tokenizer).from_pretrained(tiny_model_dir)
    add_special_tokens(tokenizer, ["<|new|>"])
    model = build_model(ModelSpec(str(tiny_model_dir)), tokenizer)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer) == len(tiny_tokenizer) + 1
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        expected = tiny_gpt2(ids).logits
        got = load_model(tiny_model_dir)(ids).logits
    assert torch.allclose(expected, got)
    assert model_kind(str(tiny_model_dir)) == "causal"


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot load a causal model"):
        load_model(tmp_path / "nope", kind="causal")


@pytest.mark.parametrize(("field", "value"), [("n_layer", 0), ("d_model", 33), ("dropout", 1.0)])
def test_spec_validation(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        ModelSpec(**{field: value})
