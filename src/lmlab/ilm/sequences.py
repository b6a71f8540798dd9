"""ILM training sequences: (document, spans) + tokenizer -> token ids, target types, padded batches.

One masked example becomes::

    context (each span replaced by its <|infill_TYPE|> id) <|startofinfill|>
    answer_1 <|endofinfill|> answer_2 <|endofinfill|> ...

with a *target type* per token (:class:`TargetType`, numbered as the reference's ``train_ilm.py``)
so that losses can be computed per type: ``context`` (CONTEXT tokens), ``infill`` (INFILL +
INFILL_SPECIAL) and ``infill_textonly`` (INFILL, the paper's perplexity).

Tokenisation is done per *segment* (the text between spans, and each answer), never across a span
boundary, so a span can never split a subword token. The reference tokenises the whole document
and aligns character spans to tokens; when a span boundary falls inside a token (nltk splits
``can't`` into ``ca``/``n't``, GPT-2 BPE into ``can``/``'t``) it silently drops the example. We keep
such examples and count them (``split_boundary``) so the data statistics show how often it happens.

Sequences longer than ``max_length`` are truncated (as in the reference, not dropped) and counted.
"""

from __future__ import annotations

import json
import logging
import uuid
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from lmlab.errors import InputError
from lmlab.ilm.format import END_INFILL, MASK_TOKENS, START_INFILL, MaskType, Span, validate_spans
from lmlab.tokenization import word_mark_id

logger = logging.getLogger(__name__)

__all__ = [
    "TargetType",
    "IlmTokens",
    "SPECIAL_TOKENS_FILE",
    "EXAMPLE_COLUMNS",
    "context_segments",
    "encode_examples",
    "iter_examples",
    "sample_example_refs",
    "build_dataset",
    "IlmCollator",
    "token_nll",
    "LOSS_KINDS",
    "per_example_sums",
    "combine_losses",
]

SPECIAL_TOKENS_FILE = "ilm_special_tokens.json"
LOSS_KINDS = ("context", "infill", "infill_textonly")
EXAMPLE_COLUMNS = ("input_ids", "target_types", "length", "doc_index", "n_spans", "split_boundary", "truncated")


class TargetType(IntEnum):
    """What a token is, for per-type losses (the reference's ``TargetType`` without ``INFILL_REDUNDANT``)."""

    PAD = 0
    CONTEXT = 1
    CONTEXT_SPECIAL = 2
    SEP = 3
    INFILL = 4
    INFILL_SPECIAL = 5


# Which target types each reported loss averages over (reference ``train_ilm.py`` eval).
_KIND_TYPES: dict[str, tuple[TargetType, ...]] = {
    "context": (TargetType.CONTEXT,),
    "infill": (TargetType.INFILL, TargetType.INFILL_SPECIAL),
    "infill_textonly": (TargetType.INFILL,),
}


@dataclass(frozen=True)
class IlmTokens:
    """Token ids of the ILM special tokens in one tokenizer."""

    start_infill: int
    end_infill: int
    masks: dict[int, int]  # MaskType value -> token id

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> IlmTokens:
        vocab = tokenizer.get_vocab()
        missing = [t for t in (START_INFILL, END_INFILL, *MASK_TOKENS.values()) if t not in vocab]
        if missing:
            raise InputError(
                f"the tokenizer lacks the ILM special tokens {missing}.",
                hint="build it with the ilm_tokenizer stage (ilm.tokenizer.special_tokens = the 7 ILM tokens).",
            )
        return cls(vocab[START_INFILL], vocab[END_INFILL], {int(t): vocab[tok] for t, tok in MASK_TOKENS.items()})

    def id_to_token(self) -> dict[str, str]:
        """``{id: token}`` like the reference's ``additional_ids_to_tokens.pkl`` (JSON keys are strings)."""
        pairs = [(self.start_infill, START_INFILL), (self.end_infill, END_INFILL)]
        pairs += [(i, MASK_TOKENS[MaskType(t)]) for t, i in self.masks.items()]
        return {str(i): tok for i, tok in sorted(pairs)}

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, tokenizer: PreTrainedTokenizerBase | None = None) -> IlmTokens:
        """Read ``ilm_special_tokens.json`` from a saved ILM dir (and check it against its tokenizer)."""
        path = Path(model_dir) / SPECIAL_TOKENS_FILE
        if not path.exists():
            raise InputError(
                f"'{model_dir}' has no {SPECIAL_TOKENS_FILE} (the ILM special-token map), so it is not an ILM model dir.",
                path=path,
                hint="use a directory written by the ilm_train stage (models/ilm/<LEVEL>).",
            )
        try:
            mapping = {int(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except (ValueError, AttributeError) as exc:
            raise InputError(f"cannot read the special-token map ({exc}).", path=path) from exc
        by_token = {tok: i for i, tok in mapping.items()}
        missing = [t for t in (START_INFILL, END_INFILL, *MASK_TOKENS.values()) if t not in by_token]
        if missing:
            raise InputError(f"the special-token map lacks {missing}.", path=path)
        tokens = cls(by_token[START_INFILL], by_token[END_INFILL],
                     {int(t): by_token[tok] for t, tok in MASK_TOKENS.items()})
        if tokenizer is not None and cls.from_tokenizer(tokenizer) != tokens:
            raise InputError("the special-token map disagrees with the tokenizer saved beside it.", path=path)
        return tokens


def context_segments(doc: str, spans: Sequence[Span]) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    """Context pieces (one more than spans), answers, and each answer's char range in ``doc``.

    Mirrors :func:`lmlab.ilm.format.mask_document`: the space before a span goes into the answer.
    """
    validate_spans(doc, spans)
    pieces, answers, ranges = [], [], []
    cursor = 0
    for _, offset, length in spans:
        start = offset - 1 if offset > cursor and doc[offset - 1] == " " else offset
        pieces.append(doc[cursor:start])
        answers.append(doc[start : offset + length])
        ranges.append((start, offset + length))
        cursor = offset + length
    pieces.append(doc[cursor:])
    return pieces, answers, ranges


def _splits_a_token(offsets: Sequence[tuple[int, int]], ranges: Sequence[tuple[int, int]]) -> bool:
    """True if a span boundary falls strictly inside a token of the whole-document tokenisation.

    For each token, the smallest boundary after its start is the only one that can fall inside it:
    a binary search per token instead of every (token, boundary) pair, which made encoding a C1
    training set (long essays, ~500 tokens each) take seconds.
    """
    boundaries = sorted({b for r in ranges for b in r})
    for start, end in offsets:
        i = bisect_right(boundaries, start)
        if i < len(boundaries) and boundaries[i] < end:
            return True
    return False


def _encode_batch(tokenizer: PreTrainedTokenizerBase, texts: list[str], offsets: bool = False) -> list[Any]:
    """Token ids (or char offsets) of ``texts`` without special tokens, exactly as ``tokenizer(texts)``.

    A fast tokenizer's ``__call__`` runs this same Rust ``encode_batch`` and then converts every
    encoding into Python dicts of six fields; reading ``ids``/``offsets`` directly skips that
    conversion (about a third of the time spent encoding an ILM training set). Only when the
    backend is in the state ``__call__`` would put it in (no truncation, no padding, special tokens
    not split); otherwise, and for other tokenizers, the ordinary call.
    """
    backend = getattr(tokenizer, "_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if (backend is not None and backend.truncation is None and backend.padding is None
            and backend.encode_special_tokens == bool(getattr(tokenizer, "split_special_tokens", False))):
        return [e.offsets if offsets else e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    out = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=offsets)
    return out["offset_mapping"] if offsets else out["input_ids"]


def encode_examples(
    docs: Sequence[str],
    examples: Sequence[Sequence[Span]],
    tokenizer: PreTrainedTokenizerBase,
    tokens: IlmTokens,
    max_length: int,
) -> dict[str, list[Any]]:
    """Encode examples (``examples[i]`` masks ``docs[i]``) into ids and target types, one batch call.

    Returns columns ``input_ids``, ``target_types``, ``length``, ``n_spans``, ``split_boundary``,
    ``truncated`` (lists aligned with the inputs).
    """
    layouts = [context_segments(doc, spans) for doc, spans in zip(docs, examples)]
    texts: list[str] = []
    for pieces, answers, _ in layouts:
        texts.extend(pieces)
        texts.extend(answers)
    ids = _encode_batch(tokenizer, texts) if texts else []
    # SentencePiece-style tokenizers put a lone word mark before a segment that starts with punctuation
    # (", and" alone -> ▁ , ▁and; inside the document and in an infill prompt: , ▁and): drop it so training
    # sees the tokens inference sees. None (nothing to do) for byte-level BPE.
    mark = word_mark_id(tokenizer)
    unique_docs = sorted(set(docs))
    doc_offsets = dict(zip(unique_docs, _encode_batch(tokenizer, unique_docs, offsets=True)))
    out: dict[str, list[Any]] = {k: [] for k in ("input_ids", "target_types", "length", "n_spans",
                                                 "split_boundary", "truncated")}
    cursor = 0
    for (pieces, answers, ranges), doc, spans in zip(layouts, docs, examples):
        piece_ids = ids[cursor : cursor + len(pieces)]
        answer_ids = ids[cursor + len(pieces) : cursor + len(pieces) + len(answers)]
        cursor += len(pieces) + len(answers)
        seq: list[int] = []
        types: list[int] = []
        for i, piece in enumerate(piece_ids):
            if mark is not None and i > 0 and piece[:1] == [mark] and not pieces[i][:1].isspace():
                piece = piece[1:]
            seq += piece
            types += [TargetType.CONTEXT] * len(piece)
            if i < len(spans):
                seq.append(tokens.masks[int(spans[i][0])])
                types.append(TargetType.CONTEXT_SPECIAL)
        seq.append(tokens.start_infill)
        types.append(TargetType.SEP)
        for answer in answer_ids:
            seq += answer + [tokens.end_infill]
            types += [TargetType.INFILL] * len(answer) + [TargetType.INFILL_SPECIAL]
        out["truncated"].append(len(seq) > max_length)
        out["input_ids"].append(seq[:max_length])
        out["target_types"].append([int(t) for t in types[:max_length]])
        out["length"].append(min(len(seq), max_length))
        out["n_spans"].append(len(spans))
        out["split_boundary"].append(_splits_a_token(doc_offsets[doc], ranges))
    return out


def check_masked(masked: Any, path: str | Path) -> list[tuple[str, Sequence[Sequence[Span]]]]:
    """``masked`` if it has the layout ilm_mask writes, else an :class:`InputError` naming the item.

    ``list[(document, [example, ...])]``, an example being ``[(mask_type, offset, length), ...]``
    of ints. Only the shape and types are checked (one pass, no span validation), so a pickle
    from another program fails here with its item index instead of deep inside encoding.
    """
    hint = "write it with the ilm_mask stage (`dvc repro ilm_mask@<level>`)."
    if not isinstance(masked, list):
        raise InputError(f"expected a list of (document, examples) items, got {type(masked).__name__}.",
                         path=path, hint=hint)
    for index, item in enumerate(masked):
        ok = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str) \
            and isinstance(item[1], (list, tuple))
        if ok:
            ok = all(isinstance(example, (list, tuple)) and all(
                isinstance(span, (list, tuple)) and len(span) == 3 and all(type(v) is int for v in span)
                for span in example) for example in item[1])
        if not ok:
            raise InputError(f"item {index} is not (document text, [[(mask_type, offset, length), ...], ...]): "
                             f"{item!r:.80}.", path=path, hint=hint)
    return masked


def iter_examples(masked: Sequence[tuple[str, Sequence[Sequence[Span]]]], max_examples_per_document: int | None = None,
                  max_documents: int | None = None, refs: Sequence[tuple[int, int]] | None = None
                  ) -> Iterator[dict[str, Any]]:
    """Rows ``{doc_index, doc, spans}`` from the masked-pickle structure ``[(doc, [example, ...]), ...]``.

    ``refs`` (``(doc_index, example_index)`` pairs, see :func:`sample_example_refs`) selects examples.
    """
    if refs is not None:
        for doc_index, example_index in refs:
            doc, doc_examples = masked[doc_index]
            spans = doc_examples[example_index]
            yield {"doc_index": doc_index, "doc": doc, "spans": [[int(t), int(o), int(n)] for t, o, n in spans]}
        return
    for doc_index, (doc, doc_examples) in enumerate(masked[:max_documents] if max_documents else masked):
        for spans in list(doc_examples)[:max_examples_per_document]:
            yield {"doc_index": doc_index, "doc": doc, "spans": [[int(t), int(o), int(n)] for t, o, n in spans]}


def sample_example_refs(masked: Sequence[tuple[str, Sequence[Any]]], n: int | None, seed: int
                        ) -> list[tuple[int, int]] | None:
    """``n`` (doc, example) index pairs drawn uniformly without replacement (sorted); None = all.

    Sampling before encoding keeps large corpora cheap when training sees only part of them.
    """
    total = sum(len(examples) for _, examples in masked)
    if n is None or n >= total:
        return None
    import random

    chosen = sorted(random.Random(seed).sample(range(total), n))
    refs, doc_index, first = [], 0, 0
    for flat in chosen:
        while flat >= first + len(masked[doc_index][1]):
            first += len(masked[doc_index][1])
            doc_index += 1
        refs.append((doc_index, flat - first))
    return refs


def build_dataset(
    masked: Sequence[tuple[str, Sequence[Sequence[Span]]]],
    tokenizer: PreTrainedTokenizerBase,
    tokens: IlmTokens,
    max_length: int,
    *,
    max_examples_per_document: int | None = None,
    max_documents: int | None = None,
    refs: Sequence[tuple[int, int]] | None = None,
    desc: str = "encode ILM examples",
):
    """A ``datasets.Dataset`` of encoded examples (columns :data:`EXAMPLE_COLUMNS`), kept in memory."""
    import datasets

    rows = list(iter_examples(masked, max_examples_per_document, max_documents, refs))
    if not rows:
        raise InputError("no masked examples to encode (empty split or every document has 0 examples).",
                         hint="check the ilm_mask stage output and ilm.mask parameters.")
    features = datasets.Features({
        "doc_index": datasets.Value("int32"), "doc": datasets.Value("string"),
        "spans": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
    })
    with _quiet_datasets():
        # In memory, and no fingerprint from hashing the data: `from_generator` and `map` otherwise
        # dill-hash every row and the tokenizer (seconds per ILM stage) for a cache that is never read.
        raw = datasets.Dataset.from_list(rows, features=features)
        encoded = raw.map(
            lambda batch: encode_examples(batch["doc"], [[tuple(s) for s in spans] for spans in batch["spans"]],
                                          tokenizer, tokens, max_length),
            batched=True, batch_size=512, remove_columns=["doc", "spans"], keep_in_memory=True,
            load_from_cache_file=False, new_fingerprint=uuid.uuid4().hex, desc=desc,
        )
    n = len(encoded)
    n_split, n_trunc = sum(encoded["split_boundary"]), sum(encoded["truncated"])
    logger.info("%s: %d examples from %d documents; %d (%.2f%%) have a span boundary inside a token "
                "(kept: segments are tokenised separately; the reference drops them); %d truncated to %d tokens",
                desc, n, len({r["doc_index"] for r in rows}), n_split, 100 * n_split / n, n_trunc, max_length)
    return encoded


class _quiet_datasets:
    """Silence ``datasets`` progress bars when lmlab progress is disabled (CI, DVC logs)."""

    def __enter__(self) -> None:
        import datasets

        from lmlab.logs import progress_disabled

        self._was = datasets.is_progress_bar_enabled()
        if progress_disabled():
            datasets.disable_progress_bars()

    def __exit__(self, *exc: object) -> None:
        import datasets

        if self._was:
            datasets.enable_progress_bars()


@dataclass
class IlmCollator:
    """Dynamic padding to the longest example of the batch (right padding) with an attention mask.

    ``pad_to`` pads every batch to a fixed length instead (the reference's 256, for benchmarks).
    """

    pad_id: int
    pad_to: int | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = self.pad_to or max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        types = torch.zeros((len(features), width), dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = min(len(f["input_ids"]), width)
            ids[row, :n] = torch.as_tensor(f["input_ids"][:n])
            types[row, :n] = torch.as_tensor(f["target_types"][:n])
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "target_types": types}


def token_nll(logits: torch.Tensor, input_ids: torch.Tensor, target_types: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of token t given tokens < t, and token t's target type (both ``[B, T-1]``)."""
    shift_logits = logits[:, :-1].float()
    targets = input_ids[:, 1:]
    nll = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), targets.reshape(-1), reduction="none")
    return nll.view(targets.shape), target_types[:, 1:]


def _kind_mask(types: torch.Tensor, kind: str) -> torch.Tensor:
    mask = torch.zeros_like(types, dtype=torch.bool)
    for t in _KIND_TYPES[kind]:
        mask |= types == int(t)
    return mask


def per_example_sums(nll: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
    """``[B, 6]``: (NLL sum, token count) for each of :data:`LOSS_KINDS`, per example."""
    cols = []
    for kind in LOSS_KINDS:
        mask = _kind_mask(types, kind)
        cols += [(nll * mask).sum(dim=1), mask.sum(dim=1).to(nll.dtype)]
    return torch.stack(cols, dim=1)


def combine_losses(nll: torch.Tensor, types: torch.Tensor, train_context: bool,
                   mode: Literal["sum_of_means", "token_mean"]) -> torch.Tensor:
    """The training loss of a batch.

    ``sum_of_means`` (reference): mean NLL over infill tokens (INFILL + INFILL_SPECIAL) plus, with
    ``train_context``, mean NLL over CONTEXT tokens. ``token_mean``: one mean over all trained tokens.
    Mask tokens in the context and the separator are never targets.
    """
    infill = _kind_mask(types, "infill")
    context = _kind_mask(types, "context") if train_context else torch.zeros_like(infill)
    if mode == "token_mean":
        trained = infill | context
        return (nll * trained).sum() / trained.sum().clamp(min=1)
    loss = (nll * infill).sum() / infill.sum().clamp(min=1)
    if train_context:
        loss = loss + (nll * context).sum() / context.sum().clamp(min=1)
    return loss
