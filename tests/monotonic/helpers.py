"""Shared helpers of the monotonic-family stage and pipeline tests: a tiny params section.

Written with ``tests.conftest.write_params(path, {"monotonic": tiny_monotonic_params(text)})``.
"""

from __future__ import annotations


def tiny_monotonic_params(text: str) -> dict:
    """The repo's monotonic section shrunk to seconds of CPU (also used by the dvc end-to-end test)."""
    training = {"max_steps": 20, "batch_size": 8, "eval_batch_size": 16, "lr": 3.0e-3, "warmup_ratio": 0.1,
                "eval_steps": 10, "save_steps": 20, "logging_steps": 5, "save_total_limit": 1}
    return {
        "sample": {"n_documents": 300},
        "data": {"text": text, "text_fields": ["text"], "valid_fraction": 0.15, "test_fraction": 0.15,
                 "min_chars": 20, "block_size": 32},
        "tokenizer": {"vocab_size": 400, "min_frequency": 2, "special_tokens": [], "text_fields": ["text"]},
        "model": {"name": "tiny-gpt-neox", "n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64,
                  "max_positions": 128, "dropout": 0.0},
        "pretrain": {"enabled": True, "training": training},
        "constraint": {"scope": "mlp_both", "parametrization": "softplus", "init": "abs", "activation": "mono_gelu"},
        "arms": {"baseline": {"constrained": False, "training": {**training, "max_steps": 10}},
                 "monotonic": {"constrained": True, "training": {**training, "max_steps": 10, "lr": 1.0e-2}}},
        "eval": {"max_length": 64, "batch_size": 16, "bootstrap": 200},
        "attack": {"threshold": 0.15, "bootstrap": 200,
                   "uat": {"trigger_length": 2, "candidates": 4, "restarts": 1, "sweeps": 1, "target_tokens": 16,
                           "n_opt": 8, "n_eval": 12, "grad_batch": 4, "score_texts": 4, "forward_batch": 128},
                   "hotflip": {"mode": "iterative", "n_texts": 12, "context_tokens": 8, "target_tokens": 8,
                               "max_flips": 2, "candidates": 4, "early_stop": True, "forward_batch": 128}},
    }

