"""The monotonic family's evaluation: perplexity of both arms, UAT + HotFlip on both, the aggregate.

Both models are scored on the same texts with the same truncation, attacked on the same texts with
the same budget, and compared with bootstrap CIs over examples (paired: the same resampled texts
for both models, via :func:`lmlab.statistics.bootstrap_ci`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel

import lmlab.monotonic.constraint  # noqa: F401 - registers the mono_* activations for from_pretrained
from lmlab.errors import InputError
from lmlab.modeling import load_model
from lmlab.monotonic.attacks import (
    allowed_token_mask,
    hotflip_attack,
    success,
    uat_attack,
)
from lmlab.monotonic.constraint import min_constrained_weight, read_marker
from lmlab.monotonic.corpus import encode_fixed, special_token_ids
from lmlab.monotonic.criteria import finite, perplexity_ok, qualify_robustness, verdict
from lmlab.monotonic.params import (  # moved there (no torch) for the params check; re-exported
    AttackParams,
    EvalParams,
)
from lmlab.monotonic.perplexity import score_texts
from lmlab.statistics import bootstrap_ci
from lmlab.tokenization import load_tokenizer

logger = logging.getLogger(__name__)

MODELS = ("baseline", "monotonic")

__all__ = ["EvalParams", "AttackParams", "evaluate_perplexity", "run_attacks", "robustness_figure", "plot_robustness",
           "headline_metrics", "write_plot_data", "MODELS", "HEADLINE_KEYS", "HEADLINE_ATTACK_KEYS"]

HEADLINE_KEYS = ("ppl", "ppl_gap_pct", "attack_reduction_pct", "attack_reduction_meaningful", "criteria")
"""Top-level keys of ``reports/metrics/monotonic.json`` (with their ``_ci_low``/``_ci_high`` siblings)."""
HEADLINE_ATTACK_KEYS = {"uat": ("ppl_increase_pct",), "hotflip": ("success_rate",)}
"""Per attack and arm, the keys ``reports/metrics/monotonic.json`` keeps (with their intervals)."""


def _ci(samples: Sequence[np.ndarray], statistic, resamples: int, seed: int) -> tuple[float, float]:
    """95% paired percentile-bootstrap CI over examples (the same resampled texts for every array)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = bootstrap_ci(samples, statistic, paired=True, n_resamples=resamples, seed=seed)
    return ci.low, ci.high


def _load(model_dir: str | Path):
    model = load_model(model_dir)
    marker = read_marker(model_dir)
    if marker is not None:
        low = min_constrained_weight(model, marker["modules"])
        logger.info("%s: %d constrained modules (%s weights), min weight %.3g, provably monotone FFN: %s",
                    model_dir, len(marker["modules"]), f"{marker['constrained_parameters']:,}", low,
                    marker["provably_monotone_ffn"])
        if low < 0:
            raise InputError(f"the monotone model has a negative constrained weight ({low}).", path=model_dir)
    model.eval()
    model.requires_grad_(False)
    return model


def evaluate_perplexity(model_dirs: Mapping[str, str | Path], texts: Sequence[str], params: EvalParams,
                        before_recovery: Mapping[str, Callable[[], PreTrainedModel]] | None = None) -> dict:
    """Token-pooled perplexity of each model on ``texts`` and the gap, with bootstrap CIs over texts.

    ``model_dirs`` holds the recovered ``baseline`` and ``monotonic`` models (the gap compares them);
    ``before_recovery``: optional loaders of further models (called one at a time, so a
    paper-scale run holds one model in memory), scored on exactly the same tokens and reported
    beside them under their names (``pretrained``: the base both arms start from;
    ``monotonic_before_recovery``: the monotone model right after the constraint, which the write-up
    reports at ~18-20 for Pythia-1.4B).
    """
    tokenizer = load_tokenizer(model_dirs["baseline"])
    models = {name: (lambda d=d: _load(d)) for name, d in model_dirs.items()}
    models.update({name: (lambda load=load: _frozen(load())) for name, load in (before_recovery or {}).items()})
    scores = {name: score_texts(load(), tokenizer, texts, params.max_length, params.batch_size)
              for name, load in models.items()}
    nll = {k: np.array(v.nll) for k, v in scores.items()}
    tok = np.array(scores["baseline"].tokens)

    def gap(base: np.ndarray, mono: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return 100.0 * np.expm1((mono.sum(-1) - base.sum(-1)) / tokens.sum(-1))

    ppl = {k: _perplexity(v.mean_nll) for k, v in scores.items()}
    out: dict = {"ppl": ppl, "nll": {k: v.mean_nll for k, v in scores.items()},
                 "ppl_gap_pct": 100.0 * (ppl["monotonic"] - ppl["baseline"]) / ppl["baseline"],
                 "n_texts": len(tok), "n_tokens": int(tok.sum())}
    out["ppl_gap_pct_ci_low"], out["ppl_gap_pct_ci_high"] = _ci([nll["baseline"], nll["monotonic"], tok], gap,
                                                                params.bootstrap, params.seed)
    logger.info("perplexity %s (gap %+.1f%%) on %d texts / %d tokens",
                ", ".join(f"{k} {v:.3f}" for k, v in ppl.items()), out["ppl_gap_pct"], len(tok), tok.sum())
    return out


def _perplexity(mean_nll: float) -> float:
    """exp(mean NLL); inf (stored as null) instead of an OverflowError for a model that predicts nothing."""
    return math.exp(mean_nll) if mean_nll < 700 else math.inf


def _frozen(model: PreTrainedModel) -> PreTrainedModel:
    model.eval()
    model.requires_grad_(False)
    return model


def _per_example(clean: torch.Tensor, attacked: torch.Tensor, threshold: float) -> list[dict]:
    ok = success(clean, attacked, threshold)
    return [{"clean_nll": float(c), "attacked_nll": float(a), "delta_nats": float(a - c),
             "ppl_increase_pct": 100.0 * math.expm1(float(a - c)), "rel_nll_increase_pct": 100.0 * float((a - c) / c),
             "success_ppl_ratio": bool(ok["ppl_ratio"][i]), "success_rel_nll": bool(ok["rel_nll"][i])}
            for i, (c, a) in enumerate(zip(clean, attacked))]


def _summary(rows: list[dict], resamples: int, seed: int) -> dict:
    """Aggregate per-example rows: pooled increases, both success rates, bootstrap CIs."""
    clean = np.array([r["clean_nll"] for r in rows])
    att = np.array([r["attacked_nll"] for r in rows])
    sr = np.array([r["success_ppl_ratio"] for r in rows], dtype=float)
    sr_rel = np.array([r["success_rel_nll"] for r in rows], dtype=float)

    def ppl_inc(c: np.ndarray, a: np.ndarray) -> np.ndarray:
        return 100.0 * np.expm1(a.mean(-1) - c.mean(-1))

    out = {"clean_nll": float(clean.mean()), "attacked_nll": float(att.mean()), "mean_delta_nats": float((att - clean).mean()),
           "ppl_increase_pct": 100.0 * math.expm1(att.mean() - clean.mean()),
           "rel_nll_increase_pct": 100.0 * float((att.mean() - clean.mean()) / clean.mean()),
           "success_rate": float(sr.mean()), "success_rate_rel_nll": float(sr_rel.mean()), "n": len(rows)}
    out["ppl_increase_pct_ci_low"], out["ppl_increase_pct_ci_high"] = _ci([clean, att], ppl_inc, resamples, seed)
    out["success_rate_ci_low"], out["success_rate_ci_high"] = _ci([sr], lambda x: x.mean(-1), resamples, seed)
    return out


def _reduction(base: np.ndarray, mono: np.ndarray) -> np.ndarray:
    """Relative success reduction in % along the last axis (nan where the baseline never succeeds)."""
    b, m = base.mean(-1), mono.mean(-1)
    return np.where(b > 0, 100.0 * (b - m) / np.where(b > 0, b, 1.0), np.nan)


def run_attacks(model_dirs: Mapping[str, str | Path], opt_texts: Sequence[str], eval_texts: Sequence[str],
                perplexity: Mapping, params: AttackParams) -> tuple[dict, dict[str, list[dict]]]:
    """UAT (optimised on ``opt_texts``, evaluated on ``eval_texts``) and HotFlip (``eval_texts``) on both models.

    Returns the aggregate metrics (contract keys) and per-example log rows per attack.
    """
    tokenizer = load_tokenizer(model_dirs["baseline"])
    u, h, seed = params.uat, params.hotflip, params.seed
    opt = torch.tensor(encode_fixed(tokenizer, opt_texts, u.target_tokens, u.n_opt, "UAT optimisation"))
    ev = torch.tensor(encode_fixed(tokenizer, eval_texts, u.target_tokens, u.n_eval, "UAT evaluation"))
    hf = torch.tensor(encode_fixed(tokenizer, eval_texts, h.context_tokens + h.target_tokens, h.n_texts, "HotFlip"))
    specials = special_token_ids(tokenizer)
    logs: dict[str, list[dict]] = {"uat": [], "hotflip": []}
    metrics: dict = {"ppl": dict(perplexity["ppl"]), "ppl_gap_pct": perplexity["ppl_gap_pct"],
                     "ppl_gap_pct_ci_low": perplexity["ppl_gap_pct_ci_low"],
                     "ppl_gap_pct_ci_high": perplexity["ppl_gap_pct_ci_high"], "uat": {}, "hotflip": {},
                     "threshold": params.threshold, "hotflip_mode": h.mode}
    for name in MODELS:
        model = _load(model_dirs[name])
        allowed = allowed_token_mask(model.get_input_embeddings().weight.size(0), len(tokenizer), specials)
        res = uat_attack(model, opt, ev, allowed, tokenizer.eos_token_id, u, seed)
        trigger = {"trigger_ids": res["trigger_ids"], "trigger_tokens": tokenizer.convert_ids_to_tokens(res["trigger_ids"])}
        rows = [{"model": name, "text_index": i, **trigger, **row}
                for i, row in enumerate(_per_example(res["clean"], res["attacked"], params.threshold))]
        logs["uat"] += rows
        metrics["uat"][name] = _summary(rows, params.bootstrap, seed)
        res = hotflip_attack(model, hf[:, :h.context_tokens], hf[:, h.context_tokens:], allowed, h, params.threshold)
        rows = [{"model": name, "text_index": i, "n_flips": len(flips),
                 "flips": [{**f, "old_token": tokenizer.convert_ids_to_tokens(f["old"]),
                            "new_token": tokenizer.convert_ids_to_tokens(f["new"])} for f in flips], **row}
                for i, (flips, row) in enumerate(zip(res["flips"], _per_example(res["clean"], res["attacked"],
                                                                                 params.threshold)))]
        logs["hotflip"] += rows
        metrics["hotflip"][name] = _summary(rows, params.bootstrap, seed)
        metrics["hotflip"][name]["mean_flips"] = float(np.mean([r["n_flips"] for r in rows]))
        logger.info("%s: UAT ppl +%.1f%% (success %.2f); HotFlip success %.2f (rel-NLL %.2f)", name,
                    metrics["uat"][name]["ppl_increase_pct"], metrics["uat"][name]["success_rate"],
                    metrics["hotflip"][name]["success_rate"], metrics["hotflip"][name]["success_rate_rel_nll"])
    metrics.update(_reductions(logs["hotflip"], params.bootstrap, seed))
    metrics = qualify_robustness(metrics)
    logger.log(logging.INFO if perplexity_ok(metrics["ppl_gap_pct"]) else logging.WARNING, "%s", verdict(metrics))
    return metrics, logs


def headline_metrics(metrics: Mapping) -> dict:
    """The headline subset of :func:`run_attacks`' metrics: what ``dvc metrics show``/``diff`` list.

    Perplexities, the gap, the attack reduction, the criteria and per arm the UAT perplexity increase
    and the HotFlip success rate, each with its 95% interval. Everything else (NLLs, the relative-NLL
    definitions, absolute changes, counts, flips) stays in the full metrics JSON that ``mono_attack``
    writes beside it (``reports/monotonic/attack_metrics.json``): 72 columns made `dvc metrics show`
    unreadable (issue 17).
    """
    def keep(src: Mapping, names: Sequence[str]) -> dict:
        return {k: v for k, v in src.items() if any(k == n or k in (f"{n}_ci_low", f"{n}_ci_high") for n in names)}

    out = keep(metrics, HEADLINE_KEYS)
    for attack, names in HEADLINE_ATTACK_KEYS.items():
        out[attack] = {arm: keep(values, names) for arm, values in metrics.get(attack, {}).items()}
    return out


def _reductions(rows: list[dict], resamples: int, seed: int) -> dict:
    """HotFlip success reduction baseline -> monotonic: relative %, absolute pp, both definitions, paired CI."""
    out = {}
    for suffix, key in (("", "success_ppl_ratio"), ("_rel_nll", "success_rel_nll")):
        base = np.array([r[key] for r in rows if r["model"] == "baseline"], dtype=float)
        mono = np.array([r[key] for r in rows if r["model"] == "monotonic"], dtype=float)
        out[f"attack_reduction_pct{suffix}"] = float(_reduction(base, mono))
        out[f"attack_change_pp{suffix}"] = 100.0 * (mono.mean() - base.mean())
        if not suffix:
            lo, hi = _ci([base, mono], _reduction, resamples, seed)
            out["attack_reduction_pct_ci_low"], out["attack_reduction_pct_ci_high"] = lo, hi
    if math.isnan(out["attack_reduction_pct"]):
        logger.warning("no HotFlip success on the baseline: the relative reduction is undefined (reported as null)")
    return out


def robustness_figure(metrics: Mapping):
    """Perplexity (x) vs HotFlip success rate and UAT perplexity increase (y), one point per model.

    The figure states the verdict (:func:`lmlab.monotonic.criteria.verdict`): when the monotone model
    fails the perplexity criterion its points are hollow and the figure says, in red, that its
    robustness is NOT MEANINGFUL, so a low success rate is never shown as a gain.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meaningful = perplexity_ok(metrics.get("ppl_gap_pct"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.0))
    panels = (("hotflip", "success_rate", 100.0, "HotFlip success rate (%)"),
              ("uat", "ppl_increase_pct", 1.0, "UAT perplexity increase (%)"))
    ppl = {name: finite(metrics["ppl"].get(name)) for name in MODELS}
    shown = [v for v in ppl.values() if v is not None]
    log_x = len(shown) == 2 and max(shown) > 100 * min(shown)  # a collapsed monotone arm (ppl 1e5 vs 143)
    for ax, (attack, key, scale, label) in zip(axes, panels):
        for name, colour in zip(MODELS, ("tab:blue", "tab:red")):
            if ppl[name] is None:  # infinite perplexity: nothing to place on the x axis
                continue
            m = metrics[attack][name]
            y = scale * m[key]
            lo, hi = scale * m[f"{key}_ci_low"], scale * m[f"{key}_ci_high"]
            hollow = name == "monotonic" and not meaningful
            ax.errorbar([ppl[name]], [y], yerr=[[max(y - lo, 0)], [max(hi - y, 0)]], fmt="o",
                        color=colour, mfc="none" if hollow else colour, capsize=4,
                        label=f"{name} (not meaningful)" if hollow else name)
        ax.margins(x=0.25, y=0.15)
        ax.set_xscale("log" if log_x else "linear")
        ax.set_xlabel("test perplexity")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Robustness vs perplexity (success: perplexity +{100 * metrics['threshold']:.0f}%, 95% bootstrap CI)")
    fig.text(0.5, 0.01, verdict(metrics), ha="center", va="bottom", fontsize=8, wrap=True,
             color="black" if meaningful else "tab:red", fontweight="normal" if meaningful else "bold")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_robustness(metrics: Mapping, path: str | Path) -> None:
    """Write :func:`robustness_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = robustness_figure(metrics)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plot_data(logs: Mapping[str, Sequence[Mapping[str, object]]], out_dir: str | Path) -> list[Path]:
    """``mono_attack``'s DVC plot data: ``<attack>/<arm>.json``, one row per attacked text
    (``clean_nll`` -> ``attacked_nll`` in nats/token, ``text_index``) for DVC's ``scatter``
    template: points above the diagonal are texts the attack hurt; both arms share one chart per
    attack and ``dvc plots diff`` overlays the revisions. Replaced atomically as a whole."""
    from lmlab.artifacts import atomic_dir
    from lmlab.plot_data import write_plot_file

    written: list[Path] = []
    with atomic_dir(out_dir) as tmp:
        for attack, rows in logs.items():
            for arm in sorted({r["model"] for r in rows}):
                points = [{"text_index": r["text_index"], "clean_nll": r["clean_nll"], "attacked_nll": r["attacked_nll"]}
                          for r in rows if r["model"] == arm]
                written.append(write_plot_file(tmp / attack / f"{arm}.json", points))
    return [Path(out_dir) / p.relative_to(tmp) for p in written]
