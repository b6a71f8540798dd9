"""The ILM perplexity matrix: every model on every level's test set, and the specialisation gain.

For each (model, test level) we sum per-token NLL and token counts per test *document* (over its
masked examples) for the three target kinds of :mod:`lmlab.ilm.sequences`: ``context``, ``infill``
and ``infill_textonly``. Perplexity is ``exp(total NLL / total tokens)`` over the level's documents;
``infill_textonly`` (answer text without ``<|endofinfill|>``) is the paper's figure and our primary
metric. Keeping the per-document sums lets us bootstrap over test documents: every perplexity gets
a 95% percentile interval (:func:`perplexity_ci`: a document's NLL sum and token count are resampled
together), and :func:`specialization_gains` bootstraps the gain paired between the specialised and
the general model (same documents in every resample):

    gain(level) = (ppl_general(level) - ppl_specialized(level)) / ppl_general(level)

positive when the specialised model is better.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmlab.device import select_runtime
from lmlab.ilm.model_dirs import load_ilm_dir
from lmlab.ilm.params import EvalParams  # moved there (no torch) for the params check; re-exported
from lmlab.ilm.sequences import LOSS_KINDS, IlmCollator, build_dataset, per_example_sums, token_nll
from lmlab.progress import progress
from lmlab.statistics import bootstrap_ci, ratio_of_sums

logger = logging.getLogger(__name__)

__all__ = ["EvalParams", "load_ilm_model", "document_sums", "summarize_documents", "perplexity_ci",
           "evaluate_matrix", "specialization_gains", "metrics_from_results", "write_plot_data", "GENERAL"]

GENERAL = "all"


def load_ilm_model(model_dir: str | Path, device: torch.device | str = "cpu", tokenizer_source: str | None = None):
    """``(model, tokenizer, IlmTokens)`` from an ILM dir, lmlab's or the reference's layout
    (:func:`lmlab.ilm.model_dirs.load_ilm_dir`); a clear error if it is neither."""
    loaded = load_ilm_dir(model_dir, device, tokenizer_source)
    return loaded.model, loaded.tokenizer, loaded.tokens


@torch.no_grad()
def document_sums(model, dataset, n_documents: int, pad_id: int, batch_size: int, desc: str = "score") -> np.ndarray:
    """``[n_documents, 6]`` per-document (NLL sum, count) for each of ``LOSS_KINDS``.

    Examples are batched by length (dynamic padding, attention mask) to avoid scoring padding.
    """
    device = next(model.parameters()).device
    order = np.argsort(np.asarray(dataset["length"]), kind="stable")
    collate = IlmCollator(pad_id)
    sums = np.zeros((n_documents, 2 * len(LOSS_KINDS)), dtype=np.float64)
    for start in progress(range(0, len(order), batch_size), desc=desc, unit="batches", leave=False):
        rows = [dataset[int(i)] for i in order[start : start + batch_size]]
        batch = {k: v.to(device) for k, v in collate(rows).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        per_example = per_example_sums(*token_nll(logits, batch["input_ids"], batch["target_types"]))
        np.add.at(sums, [r["doc_index"] for r in rows], per_example.double().cpu().numpy())
    return sums


def summarize_documents(sums: np.ndarray) -> dict[str, float]:
    """Count-weighted losses, perplexities and token counts from per-document sums."""
    total = sums.sum(axis=0)
    out: dict[str, float] = {"documents": int(sums.shape[0])}
    for i, kind in enumerate(LOSS_KINDS):
        nll, count = float(total[2 * i]), float(total[2 * i + 1])
        loss = nll / count if count else float("nan")
        out[f"{kind}_loss"] = loss
        out[f"{kind}_ppl"] = math.exp(loss) if count else float("nan")
        out[f"{kind}_count"] = int(count)
    return out


def perplexity_ci(sums: np.ndarray, params: EvalParams, kind: str = "infill_textonly") -> dict[str, float]:
    """Bootstrap CI over documents of ``exp(sum NLL / sum tokens)`` for one target kind.

    ``sums`` is :func:`document_sums`' ``[n_documents, 6]`` array; each resample draws documents with
    replacement and keeps a document's NLL sum with its own token count (paired), so the interval
    reflects both per-document loss and length variation. Returns
    :meth:`lmlab.statistics.BootstrapCI.as_dict` (``estimate`` equals the summary's ``<kind>_ppl``).
    """
    col = 2 * LOSS_KINDS.index(kind)
    ci = bootstrap_ci([sums[:, col], sums[:, col + 1]], _ppl_of_sums, paired=True,
                      n_resamples=params.bootstrap_resamples, confidence=params.confidence, seed=params.seed)
    return ci.as_dict()


def _vocab_key(tokenizer) -> str:
    return hashlib.sha256(repr(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()


def evaluate_matrix(models: Mapping[str, str | Path], tests: Mapping[str, Sequence[Any]], params: EvalParams
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """Score every model on every test set: ``{model: {level: {summary..., "doc_sums": array}}}``.

    Each summary also holds ``infill_textonly_ppl_ci`` (:func:`perplexity_ci`). Test sets are
    encoded once per distinct tokenizer and capped by ``max_documents`` and
    ``max_examples_per_document`` (the first ones in pickle order, which is deterministic).
    """
    runtime = select_runtime(params.device, "fp32")
    encoded: dict[tuple[str, str], Any] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, model_dir in models.items():
        model, tokenizer, tokens = load_ilm_model(model_dir, runtime.device, params.reference_tokenizer)
        key = _vocab_key(tokenizer)
        results[name] = {}
        for level, masked in tests.items():
            n_docs = min(len(masked), params.max_documents or len(masked))
            if (key, level) not in encoded:
                encoded[(key, level)] = build_dataset(
                    masked, tokenizer, tokens, params.max_length, max_documents=n_docs,
                    max_examples_per_document=params.max_examples_per_document, desc=f"encode ILM test {level}")
            dataset = encoded[(key, level)]
            sums = document_sums(model, dataset, n_docs, tokenizer.pad_token_id, params.batch_size,
                                 desc=f"{name} on {level}")
            summary = summarize_documents(sums)
            ci = perplexity_ci(sums, params)
            summary.update(examples=len(dataset), truncated=int(sum(dataset["truncated"])),
                           split_boundary=int(sum(dataset["split_boundary"])), infill_textonly_ppl_ci=ci,
                           doc_sums=sums)
            results[name][level] = summary
            logger.info("%s on %s: infill_textonly ppl %.2f [%.2f, %.2f] (%d tokens), infill %.3f, context %.3f",
                        name, level, summary["infill_textonly_ppl"], ci["low"], ci["high"],
                        summary["infill_textonly_count"], summary["infill_loss"], summary["context_loss"])
        del model
    return results


def _ppl_of_sums(nll: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``exp(sum NLL / sum tokens)`` along the last axis (vectorised over resamples)."""
    with np.errstate(over="ignore"):
        return np.exp(ratio_of_sums(nll, count))


def specialization_gains(results: Mapping[str, Mapping[str, Mapping[str, Any]]], levels: Sequence[str],
                         params: EvalParams, general: str = GENERAL) -> dict[str, dict[str, float]]:
    """Gain of each specialised (and ``transfer-<level>``) model over the general one on its level.

    The CI is a paired bootstrap over the level's test documents.
    """
    col = 2 * LOSS_KINDS.index("infill_textonly")
    gains: dict[str, dict[str, float]] = {}
    for level in levels:
        for name in (level, f"transfer-{level}"):
            if name not in results or level not in results[name] or general not in results:
                continue
            spec, gen = results[name][level]["doc_sums"], results[general][level]["doc_sums"]

            def gain(spec_nll, spec_n, gen_nll, gen_n):
                ppl_gen = _ppl_of_sums(gen_nll, gen_n)
                return (ppl_gen - _ppl_of_sums(spec_nll, spec_n)) / ppl_gen

            ci = bootstrap_ci([spec[:, col], spec[:, col + 1], gen[:, col], gen[:, col + 1]], gain, paired=True,
                              n_resamples=params.bootstrap_resamples, confidence=params.confidence, seed=params.seed)
            gains[name] = ci.as_dict()
            logger.info("specialization gain %s on %s: %.4f [%.4f, %.4f]", name, level, ci.estimate, ci.low, ci.high)
    return gains


def metrics_from_results(results: Mapping[str, Mapping[str, Mapping[str, Any]]],
                         gains: Mapping[str, Mapping[str, float]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, report)``: the contract keys of ``reports/metrics/ilm.json`` and the full report.

    Metrics: ``ppl.<model>.<test_level>`` with its 95% interval over test documents
    ``ppl_ci.<model>.<test_level>.{low,high}`` (from each result's ``infill_textonly_ppl_ci``, see
    :func:`evaluate_matrix`), ``specialization_gain.<name>`` and ``specialization_gain_ci.<name>.{low,high}``.
    """
    metrics: dict[str, Any] = {
        "ppl": {m: {lvl: r["infill_textonly_ppl"] for lvl, r in by_level.items()} for m, by_level in results.items()},
        "ppl_ci": {m: {lvl: {"low": r["infill_textonly_ppl_ci"]["low"], "high": r["infill_textonly_ppl_ci"]["high"]}
                       for lvl, r in by_level.items()} for m, by_level in results.items()},
        "specialization_gain": {name: g["estimate"] for name, g in gains.items()},
        "specialization_gain_ci": {name: {"low": g["low"], "high": g["high"]} for name, g in gains.items()},
    }
    report = {
        "primary_metric": "infill_textonly perplexity = exp(mean NLL over answer-text tokens)",
        "results": {m: {lvl: {k: v for k, v in r.items() if k != "doc_sums"} for lvl, r in by_level.items()}
                    for m, by_level in results.items()},
        "specialization_gain": dict(gains),
    }
    return metrics, report


def plot_matrix(metrics: Mapping[str, Any], levels: Sequence[str], heatmap_path: str | Path,
                gain_path: str | Path) -> None:
    """The model x level perplexity heatmap and the gain bar chart with CI whiskers (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.artifacts import atomic_path

    models = list(metrics["ppl"])
    grid = np.array([[metrics["ppl"][m].get(lvl, np.nan) for lvl in levels] for m in models], dtype=float)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(levels) + 2), 0.5 * len(models) + 1.8))
    image = ax.imshow(np.log(grid), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(levels)), levels)
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("test level")
    ax.set_ylabel("model")
    for i in range(len(models)):
        for j in range(len(levels)):
            light = image.norm(np.log(grid[i, j])) < 0.5  # viridis_r: low perplexity = light yellow cell
            ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=8, color="black" if light else "white")
    fig.colorbar(image, ax=ax, label="log infill_textonly perplexity")
    ax.set_title("ILM infill (text-only) perplexity\nmodel x test level")
    fig.tight_layout()
    with atomic_path(heatmap_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)

    gains, cis = metrics["specialization_gain"], metrics["specialization_gain_ci"]
    names = list(gains)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.5))
    values = np.array([gains[n] for n in names], dtype=float)
    err = np.array([[values[i] - cis[n]["low"], cis[n]["high"] - values[i]] for i, n in enumerate(names)],
                   dtype=float).reshape(-1, 2).T
    colors = ["tab:orange" if n.startswith("transfer-") else "tab:blue" for n in names]
    ax.bar(range(len(names)), 100 * values, yerr=100 * np.nan_to_num(err), color=colors, capsize=4)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("gain over general model (%)")
    ax.set_title("Specialisation gain in infill perplexity\n(95% paired bootstrap CI)")
    fig.tight_layout()
    with atomic_path(gain_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_plot_data(results: Mapping[str, Mapping[str, Mapping[str, Any]]], out_dir: str | Path) -> list[Path]:
    """``ilm_eval``'s DVC plot data: ``ppl_by_level/<model>.json``, one row per test level
    (``level``, infill text-only ``ppl`` and its 95% interval over test documents) for DVC's
    ``bar_horizontal`` template: a model's perplexity profile across CEFR levels, which
    ``dvc plots diff`` draws for both revisions side by side in one chart. Replaced atomically."""
    from lmlab.artifacts import atomic_dir
    from lmlab.plot_data import write_plot_file

    written: list[Path] = []
    with atomic_dir(out_dir) as tmp:
        for model, by_level in results.items():
            rows = [{"level": level, "ppl": r["infill_textonly_ppl"],
                     "ppl_ci_low": r.get("infill_textonly_ppl_ci", {}).get("low"),
                     "ppl_ci_high": r.get("infill_textonly_ppl_ci", {}).get("high")} for level, r in by_level.items()]
            written.append(write_plot_file(tmp / "ppl_by_level" / f"{model}.json", rows))
    return [Path(out_dir) / p.relative_to(tmp) for p in written]
