"""The ILM family's params sections that need no torch, pandas or nltk: sample, split, masking, training, budgets, transfer, evaluation.

Kept apart from the modules that use them (which import torch and transformers) so that the
params check (``stages/check_params.py``) validates them in a fraction of a second, before any
stage imports a model (issue 17); those modules re-export them.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Literal

from lmlab.errors import InputError
from lmlab.training_params import TrainingParams

__all__ = ["LEVELS", "SampleParams", "SplitParams", "ExamplesPerSplit", "MaskParams", "IlmTrainParams", "LevelBudget", "TransferParams", "EvalParams", "InfillEvalParams", "INFILLER_KINDS",
           "check_spec_syntax"]

LEVELS: tuple[str, ...] = ("A1", "A2", "B1", "B2", "C1")
"""The CEFR levels of the ILM family (the models are these plus ``all``)."""

INFILLER_KINDS = ("ilm", "mlm", "t5")
"""The ``<kind>:`` prefixes of ``ilm.infill_eval.models`` (the registry of :mod:`lmlab.ilm.infillers`;
a test keeps the two equal)."""


def check_spec_syntax(spec: str) -> None:
    """Raise :class:`InputError` unless ``spec`` is ``<kind>:<name-or-dir>`` with a known kind."""
    kind, sep, target = spec.partition(":")
    if not sep or not target or kind not in INFILLER_KINDS:
        raise InputError(f"bad model spec {spec!r}.", hint=f"use <kind>:<name-or-dir> with kind in "
                         f"{sorted(INFILLER_KINDS)}, e.g. ilm:models/ilm/all.")


@dataclass(frozen=True)
class IlmTrainParams:
    """``ilm.train``: sequence layout, loss and the Trainer settings of every ILM model.

    ``trainer`` gives every level the same length (``max_steps`` or ``epochs``); a level's own
    :class:`LevelBudget` replaces it (:func:`apply_budget`).
    """

    max_length: int = 256
    train_context: bool = True
    loss: Literal["sum_of_means", "token_mean"] = "sum_of_means"
    group_by_length: bool = True
    max_train_examples: int | None = 8000  # sampled (seeded) before encoding; null = all
    # what one epoch of `trainer.epochs` is: every training example once (write-up 001: "128,064 examples /
    # batch size 8" steps), or as many examples as the train pickle has documents (the reference's
    # --train_num_epochs, ~1/16 of the examples; write-up 000's "Training Steps: 3 (1 epoch)")
    epoch_unit: Literal["examples", "documents"] = "examples"
    max_eval_examples: int = 256
    num_samples: int = 3
    sample_max_new_tokens: int = 48
    seed: int = 0  # the top-level `seed` (merged in by the stage)
    trainer: TrainingParams = field(default_factory=TrainingParams)

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ValueError(f"max_length: must be >= 8, got {self.max_length}")
        if self.max_eval_examples <= 0:
            raise ValueError(f"max_eval_examples: must be positive, got {self.max_eval_examples}")
        if self.max_train_examples is not None and self.max_train_examples <= 0:
            raise ValueError(f"max_train_examples: must be positive or null, got {self.max_train_examples}")
        if self.num_samples < 0 or self.sample_max_new_tokens <= 0:
            raise ValueError("num_samples: must be >= 0 (and sample_max_new_tokens > 0)")
        if self.trainer.save_steps % self.trainer.eval_steps:
            raise ValueError(f"trainer: save_steps ({self.trainer.save_steps}) must be a multiple of eval_steps "
                             f"({self.trainer.eval_steps}) to keep the best-infill-loss checkpoint")


@dataclass(frozen=True)
class LevelBudget:
    """``ilm.budget.<level>``: one level's training length; null/null = ``ilm.train.trainer``'s.

    Its own params key per level, so ``dvc.yaml`` lists ``ilm.budget.<level>`` for ``ilm_train@<level>``
    alone: changing C1's budget retrains C1 and nothing else. The write-up trains C1 for 10,000 steps
    ... A1 for 50,000 (001 section 4 headings), with ``--train_num_epochs 1`` in every command.
    """

    max_steps: int | None = None
    epochs: float | None = None

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError(f"max_steps: set max_steps or epochs, not both (got {self.max_steps} and {self.epochs})")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"max_steps: must be positive or null, got {self.max_steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs: must be > 0 or null, got {self.epochs}")

    @property
    def inherits(self) -> bool:
        return self.max_steps is None and self.epochs is None


@dataclass(frozen=True)
class TransferParams:
    """`ilm.transfer`: specialised models fine-tuned from the general (`all`) model."""

    levels: tuple[str, ...] = ()  # read by dvc.yaml (which stages exist); checked here
    max_steps: int = 150
    epochs: float | None = None  # set: that many epochs instead of max_steps
    lr: float | None = None  # None: ilm.train.trainer.lr

    def __post_init__(self) -> None:
        unknown = [level for level in self.levels if level not in LEVELS]
        if unknown or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels: a list of distinct levels among {list(LEVELS)}, got {list(self.levels)}")
        if self.max_steps <= 0:
            raise ValueError(f"max_steps: must be positive, got {self.max_steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs: must be > 0 or null, got {self.epochs}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")


@dataclass(frozen=True)
class EvalParams:
    """``ilm.eval``: how much of each test set to score, batching, and the bootstrap."""

    max_documents: int | None = 120
    max_examples_per_document: int | None = 2
    max_length: int = 704
    batch_size: int = 32
    bootstrap_resamples: int = 2000
    confidence: float = 0.95
    device: str = "auto"
    reference_tokenizer: str = "gpt2"  # tokenizer of reference-format model dirs that hold none
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_documents", "max_examples_per_document"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be positive or null, got {value}")
        if self.batch_size <= 0 or self.max_length < 8:
            raise ValueError(f"batch_size: must be positive (and max_length >= 8), got {self.batch_size}")
        if self.bootstrap_resamples < 100:
            raise ValueError(f"bootstrap_resamples: must be >= 100, got {self.bootstrap_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence: must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class InfillEvalParams:
    """``ilm.infill_eval`` in params.yaml (and the ``lmlab infill-eval`` options)."""

    test_csv: str
    models: dict[str, str] = field(default_factory=dict)
    text_column: str = "text"
    cefr_column: str = "cefr"
    id_column: str = "id"
    masking: Literal["human-tokens", "random"] = "human-tokens"
    n_masks: int = 1
    samples_per_text: int = 1
    max_ngram: int = 3
    max_chars: int = 600
    limit: int = 30
    decoding: Literal["greedy", "nucleus"] = "greedy"
    top_p: float = 0.95
    max_new_tokens: int = 48
    batch_size: int = 32
    device: str = "auto"
    threads: int = 0
    reference_tokenizer: str = "gpt2"
    unterminated: Literal["keep", "drop"] = "keep"
    overlap: Literal["set", "multiset"] = "set"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_masks", "samples_per_text", "max_ngram", "max_chars", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads: must be >= 0 (0 = torch's default), got {self.threads}")
        if self.limit < 0:
            raise ValueError(f"limit: must be >= 0 (0 = all texts), got {self.limit}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        for name, allowed in (("unterminated", ("keep", "drop")), ("overlap", ("set", "multiset"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: must be one of {allowed}, got {getattr(self, name)!r}")
        if not self.reference_tokenizer:
            raise ValueError("reference_tokenizer: name a tokenizer dir or hub name (default gpt2)")
        if not self.models:
            raise ValueError("models: name at least one model spec (e.g. all: ilm:models/ilm/all)")
        for name, spec in self.models.items():
            try:
                check_spec_syntax(spec)
            except InputError as exc:
                raise ValueError(f"models: {name}: {exc.what}") from exc


@dataclass(frozen=True)
class ExamplesPerSplit:
    """Masked examples drawn per document, by split (the reference: 16)."""

    train: int = 16
    valid: int = 4
    test: int = 4

    def __post_init__(self) -> None:
        for name in ("train", "valid", "test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")



@dataclass(frozen=True)
class MaskParams:
    """``ilm.mask``: the reference's MaskHierarchical(p=0.03) and create_ilm_examples defaults."""

    p_document: float = 0.03
    p_paragraph: float = 0.03
    p_sentence: float = 0.03
    p_word: float = 0.03
    ngram_p: float = 0.5
    ngram_max_length: int = 8
    examples_per_document: ExamplesPerSplit = field(default_factory=ExamplesPerSplit)
    max_retries: int = 16
    unique_examples: bool = True
    workers: int = 0
    chunk_documents: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("p_document", "p_paragraph", "p_sentence", "p_word", "ngram_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be a probability in [0, 1], got {getattr(self, name)}")
        for name, low in (("ngram_max_length", 1), ("max_retries", 1), ("workers", 0), ("chunk_documents", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}: must be >= {low}, got {getattr(self, name)}")


@dataclass(frozen=True)
class SampleParams:
    """``ilm.sample``: how many documents to generate (default: every level's 10 % test split >= 50)."""

    n_documents: int = 36000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_documents < 10:
            raise ValueError(f"n_documents: must be >= 10, got {self.n_documents}")


@dataclass(frozen=True)
class SplitParams:
    """``ilm.data``: where the corpus is, how to read it, and how to split it."""

    csv: str = "data/ilm/sample/learner_corpus.csv"
    encoding: str = "utf-8"
    text_col: str = "text"
    cefr_col: str = "cefr"
    l1_col: str = "l1"
    id_col: str = "id"
    strict_labels: bool = False
    sample_size: int = 0
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample_size < 0:
            raise ValueError(f"sample_size: must be >= 0 (0 = all documents), got {self.sample_size}")
        for name in ("valid_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name}: must be in [0, 0.5), got {getattr(self, name)}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"encoding: unknown text encoding {self.encoding!r}") from None
