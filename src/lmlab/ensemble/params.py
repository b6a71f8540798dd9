"""The ensemble family's params sections (``ensemble.models.<name>``, ``ensemble.compare``), without torch.

Kept apart from :mod:`lmlab.ensemble.training` and :mod:`lmlab.ensemble.compare` (which import
torch and transformers) so that the params check (``stages/check_params.py``) validates them in a
fraction of a second, before any stage imports a model (issue 17); those modules re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lmlab.modeling import ModelSpec, model_kind
from lmlab.training_params import TrainingParams

__all__ = ["SftModelParams", "CompareParams"]


@dataclass(frozen=True)
class SftModelParams:
    """One entry of ``ensemble.models``: the base model, its training and sequence lengths."""

    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingParams = field(default_factory=TrainingParams)
    max_source_length: int = 192
    max_target_length: int = 96
    loss_on_prompt: bool = False
    chat_template: Literal["auto", "never", "always"] = "auto"
    cpu_threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_source_length", "max_target_length"):
            if getattr(self, name) < 8:
                raise ValueError(f"{name}: must be >= 8, got {getattr(self, name)}")
        if self.loss_on_prompt and self.kind != "causal":
            raise ValueError(f"loss_on_prompt: only a causal model sees the prompt as its own text "
                             f"({self.model.name} is {self.kind})")
        if self.cpu_threads < 0:
            raise ValueError(f"cpu_threads: must be >= 0 (0 = torch default), got {self.cpu_threads}")
        if self.chat_template == "always" and self.kind != "causal":
            raise ValueError(f"chat_template: only the causal model's prompts use a chat template "
                             f"({self.model.name} is {self.kind})")

    @property
    def kind(self) -> str:
        return model_kind(self.model.name)


@dataclass(frozen=True)
class CompareParams:
    """``ensemble.compare``: decoding and matching settings.

    ``writeup_normalizer`` picks the reading of the write-up's string normalisation (``writeup``:
    punctuation removed as it says; ``upstream``: only the characters its script removes);
    ``length_bins`` the number of excerpt-length bins of the disagreement-by-length table.
    """

    max_new_tokens: int = 56
    batch_size: int = 32
    fuzzy_threshold: float = 0.75
    label_cosine_threshold: float = 0.8
    priority: tuple[str, ...] = ()
    calibration_rows: int = 80
    cpu_threads: int = 0
    writeup_normalizer: Literal["writeup", "upstream"] = "writeup"
    length_bins: int = 3

    def __post_init__(self) -> None:
        if self.length_bins < 1:
            raise ValueError(f"length_bins: must be >= 1, got {self.length_bins}")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        for name in ("fuzzy_threshold", "label_cosine_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be in (0, 1], got {getattr(self, name)}")
