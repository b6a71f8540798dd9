"""Adversarial attacks on a causal LM's perplexity: Universal Adversarial Triggers and HotFlip.

Both work on token ids (no decode -> re-encode drift), score only target tokens, never use special
tokens as replacements and batch every forward pass (candidates x texts in one batch).

* **UAT** (Wallace et al. 2019, LM variant): input ``[sep ; trigger ; target]``, labels -100 on the
  separator and trigger. Per trigger position, one backward gives the embedding gradient ``g``;
  every vocabulary item is scored by the first-order gain ``(E_j - E_cur) . g``; the top-K are
  re-ranked by the true loss on a fixed scoring set; sweeps until no improvement; restarts. The
  clean run scores ``[sep ; target]``, so both runs score exactly the same target tokens.
* **HotFlip** (Ebrahimi et al. 2018, iterative LM variant): each text is context + target; only
  context tokens may be flipped; per step the top-K (position, token) pairs by first-order gain are
  re-ranked by the true target NLL and the best is kept if it raises the loss. ``oneshot`` mode
  reproduces the upstream (top-n positions by gradient norm, one argmax each, no re-evaluation).

Success at ``threshold`` is reported both ways: the perplexity ratio ``exp(L_att - L_clean) - 1``
(primary, an absolute change in nats) and the upstream's relative NLL ``(L_att - L_clean)/L_clean``
(proportional to the clean loss, which flatters a high-loss model).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel

from lmlab.monotonic.params import (  # moved there (no torch) for the params check; re-exported
    HotFlipParams,
    UATParams,
)
from lmlab.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["UATParams", "HotFlipParams", "allowed_token_mask", "target_nll", "success", "uat_attack",
           "hotflip_attack"]


def allowed_token_mask(n_embeddings: int, vocab_size: int, special_ids: Sequence[int]) -> torch.Tensor:
    """True for ids that may be inserted: real tokenizer ids (not embedding padding), no specials."""
    mask = torch.zeros(n_embeddings, dtype=torch.bool)
    mask[:min(vocab_size, n_embeddings)] = True
    mask[[i for i in special_ids if i < n_embeddings]] = False
    return mask


def success(clean: torch.Tensor, attacked: torch.Tensor, threshold: float) -> dict[str, torch.Tensor]:
    """Per-example success under both definitions (see module docstring)."""
    delta = attacked - clean
    return {"ppl_ratio": torch.expm1(delta) > threshold, "rel_nll": delta / clean > threshold}


def _embeddings(model: PreTrainedModel) -> torch.Tensor:
    return model.get_input_embeddings().weight


def _mean_target_nll(logits: torch.Tensor, ids: torch.Tensor, n_target: int) -> torch.Tensor:
    """Mean NLL per sequence of its last ``n_target`` tokens (each predicted from the previous position)."""
    pred = logits[:, -n_target - 1:-1, :].float()
    nll = torch.nn.functional.cross_entropy(pred.reshape(-1, pred.size(-1)), ids[:, -n_target:].reshape(-1),
                                            reduction="none")
    return nll.view(ids.size(0), n_target).mean(dim=1)


@torch.no_grad()
def target_nll(model: PreTrainedModel, ids: torch.Tensor, n_target: int, forward_batch: int = 256) -> torch.Tensor:
    """Mean target NLL of every row of ``ids`` (equal-length rows, no padding), in batches."""
    device = _embeddings(model).device
    out = [_mean_target_nll(model(input_ids=chunk.to(device)).logits, chunk.to(device), n_target).cpu()
           for chunk in ids.split(forward_batch)]
    return torch.cat(out)


def _embedding_grad(model: PreTrainedModel, ids: torch.Tensor, n_target: int) -> torch.Tensor:
    """d(sum of per-row mean target NLL)/d(input embeddings): (rows, length, dim); rows independent."""
    device = _embeddings(model).device
    ids = ids.to(device)
    embeds = _embeddings(model)[ids].detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds).logits
    _mean_target_nll(logits, ids, n_target).sum().backward()
    return embeds.grad.detach().cpu()


def _first_order_gain(grad: torch.Tensor, current: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """``(E_j - E_cur) . g`` for every vocabulary item j; grad (..., d), current (...) -> (..., V)."""
    return grad @ emb.T - (grad * emb[current]).sum(-1, keepdim=True)


def _prefixed(prefix: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Every prefix row followed by every target row: (P*T, p+t), prefix-major."""
    p, t = prefix.size(0), targets.size(0)
    return torch.cat([prefix.repeat_interleave(t, dim=0), targets.repeat(p, 1)], dim=1)


def uat_attack(
    model: PreTrainedModel,
    opt_targets: torch.Tensor,
    eval_targets: torch.Tensor,
    allowed: torch.Tensor,
    sep_id: int,
    params: UATParams,
    seed: int,
) -> dict:
    """Search a universal trigger on ``opt_targets`` that maximises target NLL; evaluate on ``eval_targets``.

    Returns the trigger ids, per-restart best losses, and per-text clean/attacked NLL on the eval texts.
    """
    model.eval()
    emb = _embeddings(model).detach().cpu()
    n_target = opt_targets.size(1)
    allowed_ids = allowed.nonzero().flatten()
    score_set = opt_targets[:params.score_texts]
    sep = torch.tensor([sep_id])
    gen = torch.Generator().manual_seed(seed)

    def loss_of(triggers: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        prefix = torch.cat([sep.expand(triggers.size(0), 1), triggers], dim=1)
        nll = target_nll(model, _prefixed(prefix, targets), n_target, params.forward_batch)
        return nll.view(triggers.size(0), targets.size(0)).mean(dim=1)

    best_overall, best_trigger, history = -math.inf, None, []
    batch_start = 0
    bar = progress(total=params.restarts * params.sweeps * params.trigger_length, desc="uat", unit="positions")
    for restart in range(params.restarts):
        trigger = allowed_ids[torch.randint(len(allowed_ids), (params.trigger_length,), generator=gen)]
        best = float(loss_of(trigger[None], score_set)[0])
        for _ in range(params.sweeps):
            improved = False
            for pos in range(params.trigger_length):
                rows = torch.arange(batch_start, batch_start + params.grad_batch) % opt_targets.size(0)
                batch_start += params.grad_batch
                prefix = torch.cat([sep, trigger])[None]
                grad = _embedding_grad(model, _prefixed(prefix, opt_targets[rows]), n_target)[:, 1 + pos].sum(0)
                gain = _first_order_gain(grad, trigger[pos], emb)
                gain[~allowed] = -math.inf
                gain[trigger[pos]] = -math.inf
                cands = gain.topk(params.candidates).indices
                trials = trigger.repeat(len(cands), 1)
                trials[:, pos] = cands
                losses = loss_of(trials, score_set)
                top = int(losses.argmax())
                if float(losses[top]) > best:
                    best, trigger, improved = float(losses[top]), trials[top].clone(), True
                bar.update(1)
            if not improved:
                break
        history.append({"restart": restart, "score_nll": best, "trigger_ids": trigger.tolist()})
        logger.info("uat restart %d: scoring-set NLL %.4f with trigger %s", restart, best, trigger.tolist())
        if best > best_overall:
            best_overall, best_trigger = best, trigger
    bar.close()
    clean = target_nll(model, torch.cat([sep.expand(eval_targets.size(0), 1), eval_targets], 1), n_target,
                       params.forward_batch)
    attacked = target_nll(model, _prefixed(torch.cat([sep, best_trigger])[None], eval_targets), n_target,
                          params.forward_batch)
    return {"trigger_ids": best_trigger.tolist(), "restarts": history, "clean": clean, "attacked": attacked}


def hotflip_attack(
    model: PreTrainedModel,
    contexts: torch.Tensor,
    targets: torch.Tensor,
    allowed: torch.Tensor,
    params: HotFlipParams,
    threshold: float,
) -> dict:
    """Flip context tokens of every text (batched across texts) to raise the target NLL.

    Returns per-text clean/attacked NLL and the list of flips ``(step, position, old, new, nll)``.
    """
    model.eval()
    emb = _embeddings(model).detach().cpu()
    n_texts, m = contexts.shape
    n_target = targets.size(1)
    ctx = contexts.clone()
    clean = target_nll(model, torch.cat([ctx, targets], 1), n_target, params.forward_batch)
    current = clean.clone()
    flipped = torch.zeros_like(ctx, dtype=torch.bool)
    active = torch.ones(n_texts, dtype=torch.bool)
    flips: list[list[dict]] = [[] for _ in range(n_texts)]
    steps = 1 if params.mode == "oneshot" else params.max_flips
    chunk = max(1, int(2e7 // (m * emb.size(0))))  # bounds the (texts, positions, vocab) gain tensor
    bar = progress(total=steps, desc="hotflip", unit="steps")
    for step in range(steps):
        rows = active.nonzero().flatten()
        if len(rows) == 0:
            break
        bar.update(1)
        grad = torch.cat([_embedding_grad(model, torch.cat([ctx[r], targets[r]], 1), n_target)[:, :m]
                          for r in rows.split(params.forward_batch)])
        new_ctx = []
        for part in range(0, len(rows), chunk):
            r = rows[part:part + chunk]
            gain = _first_order_gain(grad[part:part + chunk], ctx[r], emb)  # (b, m, V)
            gain[:, :, ~allowed] = -math.inf
            gain.scatter_(2, ctx[r].unsqueeze(-1), -math.inf)
            gain[flipped[r]] = -math.inf
            if params.mode == "oneshot":
                positions = grad[part:part + chunk].norm(dim=-1).topk(params.max_flips, dim=1).indices
                trial = ctx[r].clone()
                trial.scatter_(1, positions, gain.gather(1, positions.unsqueeze(-1).expand(-1, -1, gain.size(-1)))
                               .argmax(-1))
                new_ctx.append(trial[:, None, :])
                continue
            top = gain.flatten(1).topk(params.candidates, dim=1).indices  # (b, K) over (position, token)
            trials = ctx[r].unsqueeze(1).repeat(1, params.candidates, 1)
            trials.scatter_(2, (top // gain.size(-1)).unsqueeze(-1), (top % gain.size(-1)).unsqueeze(-1))
            new_ctx.append(trials)
        trials = torch.cat(new_ctx)  # (rows, K', m)
        k = trials.size(1)
        losses = target_nll(model, torch.cat([trials.flatten(0, 1), targets[rows].repeat_interleave(k, 0)], 1),
                            n_target, params.forward_batch).view(len(rows), k)
        best_loss, best_k = losses.max(dim=1)
        for i, row in enumerate(rows.tolist()):
            candidate = trials[i, best_k[i]]
            if params.mode == "iterative" and float(best_loss[i]) <= float(current[row]):
                active[row] = False
                continue
            for pos in (candidate != ctx[row]).nonzero().flatten().tolist():
                flips[row].append({"step": step, "position": pos, "old": int(ctx[row, pos]),
                                   "new": int(candidate[pos]), "nll": float(best_loss[i])})
                flipped[row, pos] = True
            ctx[row] = candidate
            current[row] = best_loss[i]
            if params.early_stop and all(bool(v) for v in success(clean[row:row + 1], current[row:row + 1],
                                                                  threshold).values()):
                active[row] = False
    bar.close()
    return {"clean": clean, "attacked": current, "flips": flips, "contexts": ctx}
