"""Monotone feed-forward sublayers for any HF decoder (or T5): non-negative FFN weights.

An FFN ``W2 act(W1 x + b1) + b2`` is monotone in ``x`` (Jacobian ``W2 diag(act') W1 >= 0``) when both
weight matrices are non-negative and ``act`` is non-decreasing. :func:`make_monotonic` enforces the
first condition with ``torch.nn.utils.parametrize`` (``W = phi(V)``, ``V`` trained freely) on modules
selected **by name**, whatever their class: ``nn.Linear`` (GPT-NeoX/Pythia, T5) and GPT-2's
``Conv1D`` alike (the upstream filtered on ``nn.Linear`` and silently skipped GPT-2). The second
condition is optional: ``activation="keep"`` leaves GELU (not monotone below x* ~ -0.752, reported
as such), ``"mono_gelu"`` clamps the activation's input at its minimiser x* so that
``g(x) = act(max(x, x*))`` is non-decreasing and equal to the original activation above x*.

Gated MLPs (Llama, Mistral, Qwen2, SmolLM2; T5 v1.1's ``gated-gelu``): ``down(act(gate x) * up x)``.
Non-negative ``gate``/``up``/``down`` weights and a non-decreasing ``act`` do **not** make it monotone:
``d h_i / d x_j = act'(g_i) Wg_ij u_i + act(g_i) Wu_ij`` (``g = gate x``, ``u = up x``) is negative
wherever ``u_i < 0`` or ``act(g_i) < 0``, and both happen for inputs with negative coordinates (with
``x = t 1`` and ``t`` very negative, the clamped SiLU sits at its minimum -0.278, so the product
``-0.278 u`` falls as ``u`` rises towards 0: the output *decreases* as ``t`` grows; plain SiLU also
decreases below x* ~ -1.278). What **is** guaranteed (weights >= 0, no FFN bias as in Llama, ``act`` non-decreasing
on [0, inf), which SiLU and GELU are): the gated FFN is monotone on the non-negative orthant of its
input (x >= 0 gives g, u >= 0, hence act(g) >= 0, and every term above is >= 0). The FFN input is an
RMSNorm output with both signs, so in a transformer this region is not where the model works:
:func:`make_monotonic` reports a gated FFN as **not** provably monotone whatever ``activation`` is
(``provably_monotone_ffn: false``, ``gated_mlp: true``, ``monotone_region`` in the marker) and logs
why. A provable variant would need both factors non-negative (e.g. ``relu(up x)`` and an activation
shifted to be >= 0); HF's Llama MLP cannot express that through its config, so a saved model would not
reload identically, and it is not offered.

Saving: :func:`strip_parametrizations` bakes ``phi(V)`` into plain weights (still >= 0) so a
monotone model is an ordinary ``from_pretrained`` checkpoint; a ``monotonic.json`` marker beside
it records what was constrained. The clamped activation is recorded in the model config under a
registered activation name (``mono_gelu``, ``mono_gelu_new``...), so ``from_pretrained`` rebuilds it
once this module is imported (and fails loudly, instead of silently using GELU, if it is not).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from transformers import PreTrainedModel, activations

from lmlab.errors import InputError
from lmlab.modeling import load_model
from lmlab.monotonic.params import (  # moved there (no torch) for the params check; re-exported
    Init,
    MonotonicParams,
    Parametrization,
    Scope,
)

logger = logging.getLogger(__name__)

MARKER_FILE = "monotonic.json"
ABS_EPS = 1e-4  # init "abs": W0 = |W| + eps (upstream)
CLAMP_DELTA = 1e-6  # init "clamp": W0 = max(W, delta)

# Name suffixes per scope. "mlp.c_proj" (not bare "c_proj", which also matches GPT-2's attn.c_proj).
_MLP_IN = ("mlp.dense_h_to_4h", "mlp.c_fc", "mlp.fc_in", "mlp.up_proj", "mlp.gate_proj",
           "DenseReluDense.wi", "DenseReluDense.wi_0", "DenseReluDense.wi_1")
_MLP_OUT = ("mlp.dense_4h_to_h", "mlp.c_proj", "mlp.fc_out", "mlp.down_proj", "DenseReluDense.wo")
_ATTN_OUT = ("attention.dense", "attn.c_proj", "attn.out_proj", "SelfAttention.o", "EncDecAttention.o")
SCOPES: dict[str, tuple[str, ...]] = {
    "mlp_in": _MLP_IN,
    "mlp_both": _MLP_IN + _MLP_OUT,
    "mlp_in_attn_out": _MLP_IN + _ATTN_OUT,
}
# (gate, up) module names of gated FFNs ``down(act(gate x) * up x)`` (Llama-family; T5 v1.1 gated-gelu).
_GATED_PAIRS = (("gate_proj", "up_proj"), ("wi_0", "wi_1"))
# Attributes holding an FFN's activation module: GPT-2/GPT-NeoX/T5 ``act``, Llama-family ``act_fn``.
_ACT_ATTRS = ("act", "act_fn")
GATED_REGION = "non-negative orthant of the FFN input (x >= 0; bias-free FFN, weights >= 0)"
# Config attributes naming the FFN activation (GPT-NeoX, GPT-2, T5 derived from feed_forward_proj).
_ACT_CONFIG_KEYS = ("hidden_act", "activation_function", "dense_act_fn")
MONOTONE_BASES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate", "gelu_python",
                  "quick_gelu", "silu", "swish")

__all__ = [
    "MonotonicParams", "NonNegative", "MonotoneActivation", "SCOPES", "select_modules", "make_monotonic",
    "constrained_modules", "count_constrained", "min_constrained_weight", "strip_parametrizations",
    "write_marker", "read_marker", "activation_minimum", "start_model", "gated_ffns",
]


class NonNegative(nn.Module):
    """``W = phi(V) >= 0`` with a stable ``right_inverse`` (initialisation goes through it)."""

    def __init__(self, kind: Parametrization = "softplus") -> None:
        super().__init__()
        self.kind = kind

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.kind == "softplus":
            return F.softplus(v)
        if self.kind == "exp":
            return torch.exp(v)
        return torch.abs(v)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        w = w.clamp_min(CLAMP_DELTA)
        if self.kind == "softplus":  # log(expm1(w)); softplus is the identity beyond 20
            return torch.where(w > 20, w, torch.log(torch.expm1(torch.clamp(w, max=20.0))))
        if self.kind == "exp":
            return torch.log(w)
        return w


@functools.cache
def activation_minimum(base: str) -> tuple[float, float]:
    """(x*, act(x*)): the global minimiser of a registered activation on [-6, 0], computed numerically.

    Grid search then golden-section refinement in float64, so the constants are never hard-coded
    (exact GELU: -0.75179, -0.16997; gelu_new: -0.75246, -0.17004).
    """
    fn = activations.ACT2FN[base]
    cpu = torch.device("cpu")  # explicit: from_pretrained builds modules under a meta-device context
    grid = torch.linspace(-6.0, 0.0, 6001, dtype=torch.float64, device=cpu)
    i = int(torch.argmin(fn(grid)))
    lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
    ratio = (math.sqrt(5) - 1) / 2

    def f(x: float) -> float:
        return float(fn(torch.tensor([x], dtype=torch.float64, device=cpu))[0])

    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if f(a) < f(b):
            hi = b
        else:
            lo = a
    x_star = (lo + hi) / 2
    return x_star, f(x_star)


class MonotoneActivation(nn.Module):
    """``g(x) = act(max(x, x*))``: the activation clamped below its minimum, hence non-decreasing."""

    def __init__(self, base: str = "gelu") -> None:
        super().__init__()
        self.base = base
        self.fn = activations.ACT2FN[base]
        self.x_min, self.y_min = activation_minimum(base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(torch.clamp_min(x, self.x_min))

    def extra_repr(self) -> str:
        return f"base={self.base}, x_min={self.x_min:.5f}, y_min={self.y_min:.5f}"


for _base in MONOTONE_BASES:  # so config.json may name them and from_pretrained rebuilds them
    activations.ACT2CLS.setdefault(f"mono_{_base}", (MonotoneActivation, {"base": _base}))
    activations.ACT2FN.setdefault(f"mono_{_base}", (MonotoneActivation, {"base": _base}))


def select_modules(model: nn.Module, scope: Scope) -> list[tuple[str, nn.Module]]:
    """Modules whose name ends with one of the scope's suffixes and that own a 2-D ``weight``.

    Raises :class:`InputError` listing the model's module names when nothing matches.
    """
    suffixes = SCOPES[scope]
    found = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() != 2:
            continue
        if any(name == s or name.endswith("." + s) for s in suffixes):
            found.append((name, module))
    if not found:
        names = sorted({n for n, m in model.named_modules() if getattr(m, "weight", None) is not None})
        shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
        raise InputError(
            f"no feed-forward module of scope '{scope}' found in {type(model).__name__} "
            f"(looked for names ending in {', '.join(suffixes)}; modules with weights: {shown}).",
            key="monotonic.constraint.scope",
            hint="use a GPT-NeoX/Pythia, GPT-2/DistilGPT2, GPT-J, Llama-family or T5 model, or another scope.",
        )
    return found


def _initial_weight(weight: torch.Tensor, init: Init) -> torch.Tensor:
    if init == "abs":
        return weight.abs() + ABS_EPS
    return weight.clamp_min(CLAMP_DELTA)


def _swap_activations(model: PreTrainedModel, names: list[str]) -> list[str]:
    """Replace the ``act`` of every FFN owning a constrained module; record it in the config."""
    config = model.config
    key = next((k for k in _ACT_CONFIG_KEYS if isinstance(getattr(config, k, None), str)), None)
    base = getattr(config, key) if key else None
    if base is None or base.startswith("mono_"):
        return []
    if base == "relu":
        logger.info("activation relu is already monotone; left unchanged")
        return []
    if base not in MONOTONE_BASES:
        raise InputError(f"activation '{base}' has no monotone variant (supported: {', '.join(MONOTONE_BASES)}).",
                         key="monotonic.constraint.activation", hint="use activation: keep.")
    swapped = []
    for parent in sorted({n.rsplit(".", 1)[0] for n in names}):
        module = model.get_submodule(parent)
        for attr in _ACT_ATTRS:  # the module the FFN calls; config alone would only change a reload
            if isinstance(getattr(module, attr, None), nn.Module):
                setattr(module, attr, MonotoneActivation(base))
                swapped.append(f"{parent}.{attr}")
                break
    setattr(config, key, f"mono_{base}")
    if key == "dense_act_fn":  # T5 derives dense_act_fn from feed_forward_proj when reloading
        config.feed_forward_proj = ("gated-" if config.is_gated_act else "") + f"mono_{base}"
    x_star, y_star = activation_minimum(base)
    logger.info("activation %s -> mono_%s (clamped below x*=%.5f, value %.5f) in %d FFNs",
                base, base, x_star, y_star, len(swapped))
    return swapped


def gated_ffns(model: nn.Module) -> list[str]:
    """Names of the FFNs that multiply two projections (``down(act(gate x) * up x)``)."""
    found = []
    for name, module in model.named_modules():
        if any(isinstance(getattr(module, g, None), nn.Module) and isinstance(getattr(module, u, None), nn.Module)
               for g, u in _GATED_PAIRS):
            found.append(name)
    return found


def make_monotonic(model: PreTrainedModel, params: MonotonicParams) -> dict:
    """Constrain the scope's weights to be non-negative, in place; return a summary (for the marker).

    The summary holds the module names, the computed number of constrained weights, whether the
    FFN is provably monotone (non-negative weights *and* a non-decreasing activation) and the
    activation swap.
    """
    selected = select_modules(model, params.scope)
    for _, module in selected:
        with torch.no_grad():
            module.weight.copy_(_initial_weight(module.weight.detach(), params.init))
        parametrize.register_parametrization(module, "weight", NonNegative(params.parametrization))
    names = [n for n, _ in selected]
    swapped = _swap_activations(model, names) if params.activation == "mono_gelu" else []
    act_name = next((getattr(model.config, k) for k in _ACT_CONFIG_KEYS if isinstance(getattr(model.config, k, None), str)), "?")
    monotone_act = act_name == "relu" or act_name.startswith("mono_")
    gated = gated_ffns(model)
    provable = monotone_act and not gated  # a gated FFN is not monotone even then (module docstring)
    n_weights = count_constrained(model)
    total = sum(p.numel() for p in model.parameters())
    logger.info("constrained %d modules (%s weights = %.1f%% of %s parameters), scope %s, phi %s, init %s",
                len(names), f"{n_weights:,}", 100.0 * n_weights / total, f"{total:,}",
                params.scope, params.parametrization, params.init)
    if gated:
        logger.warning("%d gated FFNs (down(act(gate x) * up x)): NOT monotone even with non-negative weights and a "
                       "monotone activation (the product decreases where up x < 0 or act(gate x) < 0); monotone "
                       "only on the %s. Activation '%s'.", len(gated), GATED_REGION, act_name)
    elif not provable:
        logger.warning("activation '%s' is not non-decreasing: the FFNs are NOT provably monotone "
                       "(non-negative weights only); use activation: mono_gelu for a provable guarantee", act_name)
    return {
        "scope": params.scope, "parametrization": params.parametrization, "init": params.init,
        "activation": params.activation, "activation_name": act_name, "provably_monotone_ffn": provable,
        **({"gated_mlp": True, "monotone_region": GATED_REGION} if gated else {}),
        "modules": names, "swapped_activations": swapped, "constrained_parameters": n_weights,
        "total_parameters": total,
    }


def constrained_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules carrying a registered ``weight`` parametrization."""
    return [(n, m) for n, m in model.named_modules() if parametrize.is_parametrized(m, "weight")]


def count_constrained(model: nn.Module) -> int:
    """Number of weight entries under a non-negativity parametrization (computed, never hard-coded)."""
    return sum(m.weight.numel() for _, m in constrained_modules(model))


def min_constrained_weight(model: nn.Module, names: list[str] | None = None) -> float:
    """Smallest effective weight (through ``module.weight``, not ``.original``) of the given modules."""
    modules = [model.get_submodule(n) for n in names] if names is not None else [m for _, m in constrained_modules(model)]
    if not modules:
        raise ValueError("no constrained modules")
    with torch.no_grad():
        return min(float(m.weight.min()) for m in modules)


def strip_parametrizations(model: nn.Module) -> int:
    """Bake ``phi(V)`` into plain weights (still >= 0, no longer constrained); return how many."""
    stripped = constrained_modules(model)
    for _, module in stripped:
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return len(stripped)


def write_marker(model_dir: str | Path, summary: dict) -> None:
    """Write ``monotonic.json`` beside a saved model (the stripped weights are plain tensors)."""
    (Path(model_dir) / MARKER_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def read_marker(model_dir: str | Path) -> dict | None:
    """The ``monotonic.json`` summary of a saved model, or ``None`` for an unconstrained model."""
    path = Path(model_dir) / MARKER_FILE
    return json.loads(path.read_text()) if path.exists() else None


def start_model(pretrained_dir: str | Path, constrained: bool,
                constraint: MonotonicParams) -> tuple[PreTrainedModel, dict | None]:
    """An arm's model at step 0 of its recovery training, and the constraint summary (None: unconstrained).

    The pretrained weights, constrained first when the arm is. ``mono_eval`` scores the monotone
    arm's start model ("right after the constraint, before recovery") through this same function,
    so the number it reports is the model recovery training starts from.
    """
    model = load_model(pretrained_dir)
    summary = make_monotonic(model, constraint) if constrained else None
    if summary is None and constrained_modules(model):
        raise RuntimeError("the baseline copy unexpectedly carries parametrizations")
    if summary is not None:
        summary["min_weight_before_training"] = min_constrained_weight(model)
    return model, summary
