"""Decisions of a fine-tuned model on the fixed balanced test set, two ways, and their metrics.

* **Scoring** (primary, no parsing): teacher-force the prompt plus the response up to the
  decision token and take ``p_accept = softmax(logit_accept, logit_reject)[0]`` at that
  position; predict Accept iff ``p_accept > 0.5``. Gives AUC and the Brier score.
* **Generation** (upstream-compatible): greedy decoding from the prompt, then
  ``\\boxed{Accept|Reject}`` parsing with the bare-word fallback; unparseable outputs are
  counted as unknowns and excluded from the generation metrics.

The two agree whenever the decision token is the greedy argmax among all tokens; their
agreement rate is reported. Metrics use scikit-learn with Accept as the positive class.

The headline scoring metrics (:data:`CI_METRICS`: accuracy, F1, acceptance rate) carry a 95%
percentile-bootstrap interval over test items, ``<metric>_ci_low`` / ``<metric>_ci_high``
(:func:`decision_intervals`; :data:`N_RESAMPLES` resamples, fixed seed 0). Each resample draws
the same items for the gold labels and the predictions, and F1 is recomputed from that
resample's confusion counts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.errors import InputError
from lmlab.modeling import load_model
from lmlab.progress import progress
from lmlab.statistics import bootstrap_ci
from lmlab.tokenization import load_tokenizer
from lmlab.weighted.data import ACCEPT, REJECT, DecisionExample, parse_decision
from lmlab.weighted.params import WeightedConfig
from lmlab.weighted.tokens import EncodedDecision, encode_decisions

logger = logging.getLogger(__name__)

__all__ = ["score_decisions", "generate_decisions", "classification_metrics", "decision_intervals",
           "evaluate_decisions", "evaluate_model_dir", "evaluate_configs", "weighted_metrics", "CONTRACT", "EXTRAS",
           "CI_METRICS", "CI_KEYS", "N_RESAMPLES"]

CONTRACT = ("accuracy", "precision", "recall", "f1", "acceptance_rate")
"""Per-config metrics every weighted run reports (the metrics contract)."""
EXTRAS = ("auc", "gen_unknowns")
"""Further per-config metrics copied into ``reports/metrics/weighted.json`` (AUC: does the model still rank
the rows; ``gen_unknowns``: the sweep's valid-predictions criterion). Brier, the generation metrics and the
scoring/generation agreement stay in ``reports/weighted/eval.json`` (``configs.<config>.metrics``): the
metrics file is what `dvc metrics show` and `dvc exp show` list (issue 17)."""
CI_METRICS = ("accuracy", "f1", "acceptance_rate")
"""Metrics with a 95% bootstrap interval over test items, stored as ``<metric>_ci_low/_ci_high``."""
CI_KEYS = tuple(f"{m}_ci_{side}" for m in CI_METRICS for side in ("low", "high"))
N_RESAMPLES = 2000
"""Bootstrap resamples behind every interval (a module constant: not a pipeline param)."""
CONFIDENCE = 0.95


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


@torch.no_grad()
def score_decisions(model: PreTrainedModel, rows: Sequence[EncodedDecision], pad_id: int,
                    batch_size: int = 64) -> np.ndarray:
    """``p_accept`` per row from the logits at the decision position (right-padded batches)."""
    model.eval()
    device = next(model.parameters()).device
    out: list[float] = []
    for batch in progress(_batches(rows, batch_size), desc="score", unit="batches"):
        width = max(len(r.prefix_ids) for r in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            ids[i, : len(r.prefix_ids)] = torch.tensor(r.prefix_ids)
            mask[i, : len(r.prefix_ids)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        last = mask.sum(1).to(device) - 1
        rows_idx = torch.arange(len(batch), device=device)
        step = logits[rows_idx, last]
        pair = torch.stack([step[rows_idx, torch.tensor([r.accept_id for r in batch], device=device)],
                            step[rows_idx, torch.tensor([r.reject_id for r in batch], device=device)]], dim=1)
        out.extend(torch.softmax(pair, dim=1)[:, 0].tolist())
    return np.asarray(out, dtype=np.float64)


@torch.no_grad()
def generate_decisions(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Sequence[EncodedDecision],
                       batch_size: int = 64, max_new_tokens: int = 8) -> list[str]:
    """Greedy continuations of the prompts (left-padded batches), decoded without special tokens."""
    model.eval()
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    limit = getattr(model.config, "max_position_embeddings", None) or 1024
    room = max(1, limit - max_new_tokens)  # prompts are cut from the left so generation fits the positions
    texts: list[str] = []
    for batch in progress(_batches(rows, batch_size), desc="generate", unit="batches"):
        prompts = [r.prompt_ids[-room:] for r in batch]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt):] = torch.tensor(prompt)
            mask[i, width - len(prompt):] = 1
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                             eos_token_id=tokenizer.eos_token_id)
        texts.extend(tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True))
    return texts


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], p_accept: Sequence[float] | None = None
                           ) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (Accept = 1 positive), acceptance rates, AUC and Brier."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "reject_precision": float(precision_score(y_true, y_pred, pos_label=0, zero_division=0)),
        "reject_recall": float(recall_score(y_true, y_pred, pos_label=0, zero_division=0)),
        "acceptance_rate": float(y_pred.mean()) if len(y_pred) else 0.0,
        "gold_acceptance_rate": float(y_true.mean()) if len(y_true) else 0.0,
        "n": len(y_true),
    }
    if p_accept is not None:
        p = np.asarray(p_accept, dtype=float)
        metrics["auc"] = float(roc_auc_score(y_true, p)) if len(set(y_true.tolist())) == 2 else float("nan")
        metrics["brier"] = float(brier_score_loss(y_true, p))
        metrics["mean_p_accept"] = float(p.mean())
    return metrics


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return (y_true == y_pred).mean(axis=-1)


def _f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """F1 of Accept (= 1) per row, 0 when there is no positive at all (sklearn's ``zero_division=0``)."""
    tp = (y_true * y_pred).sum(axis=-1)
    errors = (y_true != y_pred).sum(axis=-1)  # FP + FN
    denom = 2 * tp + errors
    return np.divide(2 * tp, denom, out=np.zeros(np.shape(denom), dtype=np.float64), where=denom > 0)


def _acceptance(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return y_pred.mean(axis=-1)


_STATISTICS = {"accuracy": _accuracy, "f1": _f1, "acceptance_rate": _acceptance}


def decision_intervals(y_true: Sequence[int], y_pred: Sequence[int], *, n_resamples: int = N_RESAMPLES,
                       seed: int = 0) -> dict[str, float]:
    """``<metric>_ci_low`` / ``<metric>_ci_high`` for every :data:`CI_METRICS` metric.

    95% percentile bootstrap over test items, gold and predicted labels resampled together
    (paired); F1 is recomputed per resample (vectorised). No items: NaN bounds.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    out: dict[str, float] = {}
    for name in CI_METRICS:
        if y_true.size == 0:
            low = high = float("nan")
        else:
            ci = bootstrap_ci([y_true, y_pred], _STATISTICS[name], paired=True, n_resamples=n_resamples,
                              confidence=CONFIDENCE, seed=seed)
            low, high = ci.low, ci.high
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
    return out


def evaluate_decisions(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Sequence[EncodedDecision],
                       batch_size: int = 64, max_new_tokens: int = 8) -> dict[str, Any]:
    """Scoring metrics (primary) with their :func:`decision_intervals`, generation metrics (``gen_*``),
    unknowns and agreement."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    y_true = np.asarray([int(r.accept) for r in rows])
    p_accept = score_decisions(model, rows, pad_id, batch_size)
    y_score = (p_accept > 0.5).astype(int)
    metrics: dict[str, Any] = classification_metrics(y_true, y_score, p_accept)
    metrics.update(decision_intervals(y_true, y_score))
    texts = generate_decisions(model, tokenizer, rows, batch_size, max_new_tokens)
    parsed = [parse_decision(t) for t in texts]
    valid = np.asarray([p is not None for p in parsed])
    y_gen = np.asarray([int(p == ACCEPT) for p in parsed])
    gen = classification_metrics(y_true[valid], y_gen[valid]) if valid.any() else {}
    for key in ("accuracy", "f1", "acceptance_rate"):  # NaN (JSON null) when every generation is unknown
        metrics[f"gen_{key}"] = gen.get(key, float("nan"))
    metrics["gen_unknowns"] = int((~valid).sum())
    metrics["agreement"] = float(np.mean([p == (ACCEPT if s else REJECT) for p, s in zip(parsed, y_score)]))
    logger.info("accuracy %.3f, acceptance %.3f (gold %.3f), AUC %.3f, gen unknowns %d, agreement %.3f",
                metrics["accuracy"], metrics["acceptance_rate"], metrics["gold_acceptance_rate"], metrics["auc"],
                metrics["gen_unknowns"], metrics["agreement"])
    return {"metrics": metrics, "p_accept": p_accept.tolist(), "generations": texts}


def evaluate_model_dir(model_dir: str | Path, examples: Sequence[DecisionExample], batch_size: int = 64,
                       max_new_tokens: int = 8) -> dict[str, Any]:
    """Load a saved ``wl_train`` model (weights + its tokenizer) and evaluate it on ``examples``.

    The test rows are encoded with the model's own tokenizer, so any base model works, and in
    its chat template when training used it (``"chat_template": true`` in ``train_summary.json``).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise InputError("not a trained model directory (no config.json).", path=model_dir,
                         hint="run the matching wl_train stage first.")
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, "causal")
    summary = model_dir / "train_summary.json"
    chat = bool(json.loads(summary.read_text()).get("chat_template")) if summary.exists() else False
    encoded, _ = encode_decisions(tokenizer, examples, model.config.max_position_embeddings
                                  if hasattr(model.config, "max_position_embeddings") else 1024, chat=chat)
    result = evaluate_decisions(model, tokenizer, encoded, batch_size, max_new_tokens)
    result["ids"] = [e.id for e in examples]
    return result


def evaluate_configs(models_dir: str | Path, configs: Mapping[str, WeightedConfig], fractions: Mapping[str, float],
                     gamma: float, examples: Sequence[DecisionExample], batch_size: int = 64,
                     max_new_tokens: int = 8) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate ``<models_dir>/<name>`` for every config on ``examples``; see :func:`weighted_metrics`."""
    if not configs:
        raise InputError("no model to evaluate: weighted.configs is empty.", key="weighted.configs")
    results, trained = {}, {}
    for name in configs:
        model_dir = Path(models_dir) / name
        results[name] = evaluate_model_dir(model_dir, examples, batch_size, max_new_tokens)
        summary = model_dir / "train_summary.json"
        if not summary.exists():
            raise InputError("not a wl_train model directory (no train_summary.json).", path=model_dir,
                             hint="run the matching wl_train stage first.")
        trained[name] = json.loads(summary.read_text())
    return weighted_metrics(configs, fractions, gamma, results, trained)


def weighted_metrics(configs: Mapping[str, WeightedConfig], fractions: Mapping[str, float], gamma: float,
                     results: Mapping[str, Mapping[str, Any]], trained: Mapping[str, Mapping[str, Any]]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contract metrics JSON and the full evaluation JSON of every config.

    ``results[name]`` is :func:`evaluate_model_dir`'s output and ``trained[name]`` the model's
    ``train_summary.json``. Metrics: ``gold_acceptance_rate`` and per config the :data:`CONTRACT` and :data:`EXTRAS` metrics, the 95% intervals
    :data:`CI_KEYS` (``<metric>_ci_low``/``_ci_high``), its effective ``gamma``, ``accept_fraction``
    (of its training set, ``fractions[config.set]``) and ``upweights_accept`` (0/1). Full: ``ids`` of
    the test rows and per config its ``config`` (training set name, variant, training summary), all
    ``metrics``, ``p_accept`` per row and the first 8 ``sample_generations``.
    """
    if not configs:
        raise ValueError("weighted_metrics needs at least one config")
    # No top-level ``gamma`` (issue 17): it duplicated the param, so `dvc exp show` had to call the swept
    # column `params.yaml:gamma` and `--keep 'gamma'` matched nothing. Each config keeps its effective gamma.
    metrics: dict[str, Any] = {}
    full: dict[str, Any] = {}
    for name, cfg in configs.items():
        result, summary = results[name], trained[name]
        m = result["metrics"]
        metrics[name] = {**{k: m[k] for k in CONTRACT + EXTRAS + CI_KEYS}, "gamma": summary["gamma"],
                         "accept_fraction": float(fractions[cfg.set]),
                         "upweights_accept": int(cfg.variant == "accept")}
        full[name] = {"config": {"set": cfg.set, "variant": cfg.variant, **summary},
                      "metrics": m, "p_accept": result["p_accept"], "sample_generations": result["generations"][:8]}
    metrics["gold_acceptance_rate"] = next(iter(full.values()))["metrics"]["gold_acceptance_rate"]
    return metrics, {"ids": results[list(configs)[-1]]["ids"], "configs": full}
