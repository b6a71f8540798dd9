"""A registry of infilling systems behind one interface (lm-evaluation-harness style).

A model spec is ``<kind>:<name-or-dir>``:

- ``ilm:<dir>`` - an ILM directory trained by this repo or by the reference's ``train_ilm.py``
  (:mod:`lmlab.ilm.model_dirs`; a reference dir's tokenizer comes from
  ``InfillOptions.reference_tokenizer`` unless the dir holds one): the context holds one
  ``<|infill_TYPE|>`` token per span and the model writes the answers after
  ``<|startofinfill|>``; batched, KV-cached decoding (:mod:`lmlab.ilm.infill`). An answer the
  model had not closed with ``<|endofinfill|>`` when its tokens ran out is kept as generated
  (``InfillOptions.keep_unterminated``; the reference drops it); after each call
  ``IlmSystem.last_unterminated`` flags those spans.
- ``mlm:<name-or-dir>`` - a masked-LM baseline (BERT/RoBERTa style). Each span becomes as
  many mask tokens as the ORIGINAL span has subwords (an oracle length the other systems
  do not get - keep that in mind when comparing), then the masks are filled iteratively,
  one per forward pass, most-confident first: at each step the still-masked position whose
  best (non-special) token has the highest probability is fixed to that token.
- ``t5:<name-or-dir>`` - T5 sentinel infilling: span ``i`` becomes ``<extra_id_i>`` in the
  input; the decoder writes ``<extra_id_0> answer_0 <extra_id_1> answer_1 ...``; the answer
  of span ``i`` is the text between sentinel ``i`` and the next sentinel / end of sequence.

Every infiller maps ``(document, spans)`` items to one predicted string per span (``""``
when the system produced nothing for it). New kinds register with :func:`register`. An infiller
may also expose ``last_unterminated`` (one flag per span of the last call: the answer was cut
by the token budget), which the infill evaluation counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from lmlab.device import select_runtime
from lmlab.errors import InputError
from lmlab.ilm.format import Span, mask_document, validate_spans
from lmlab.progress import progress

if TYPE_CHECKING:
    from lmlab.ilm.infill import IlmInfiller

logger = logging.getLogger(__name__)

__all__ = ["InfillOptions", "Infiller", "register", "make_infiller", "parse_spec", "INFILLERS", "split_document",
           "load_ilm"]

Item = tuple[str, Sequence[Span]]


@dataclass(frozen=True)
class InfillOptions:
    """Decoding options shared by every infiller (each uses the ones that apply to it)."""

    decoding: str = "greedy"
    top_p: float = 0.95
    seed: int = 0
    max_new_tokens: int = 48
    batch_size: int = 32
    device: str = "auto"
    reference_tokenizer: str | None = None
    keep_unterminated: bool = True


class Infiller(Protocol):
    spec: str

    def infill(self, items: Sequence[Item]) -> list[list[str]]: ...


INFILLERS: dict[str, Callable[[str, InfillOptions], Infiller]] = {}


def register(kind: str) -> Callable:
    def decorate(factory: Callable[[str, InfillOptions], Infiller]) -> Callable[[str, InfillOptions], Infiller]:
        INFILLERS[kind] = factory
        return factory

    return decorate


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, target = spec.partition(":")
    if not sep or not target or kind not in INFILLERS:
        raise InputError(f"bad model spec {spec!r}.", hint=f"use <kind>:<name-or-dir> with kind in {sorted(INFILLERS)}, "
                         "e.g. ilm:models/ilm/all.")
    return kind, target


def make_infiller(spec: str, options: InfillOptions | None = None) -> Infiller:
    """Build the infiller a spec names (loads the model)."""
    kind, target = parse_spec(spec)
    return INFILLERS[kind](target, options or InfillOptions())


def split_document(doc: str, spans: Sequence[Span]) -> tuple[list[str], list[str]]:
    """``(pieces, answers)``: the ``k+1`` texts around the ``k`` spans, and the span texts."""
    validate_spans(doc, spans)
    pieces, answers, cursor = [], [], 0
    for _, offset, length in spans:
        pieces.append(doc[cursor:offset])
        answers.append(doc[offset:offset + length])
        cursor = offset + length
    pieces.append(doc[cursor:])
    return pieces, answers


def _batches(n: int, size: int) -> list[range]:
    return [range(s, min(n, s + size)) for s in range(0, n, size)]


def load_ilm(model_dir: str | Path, device: str = "auto", tokenizer_source: str | None = None) -> IlmInfiller:
    """An :class:`~lmlab.ilm.infill.IlmInfiller` for an ILM directory of either layout (:mod:`lmlab.ilm.model_dirs`)."""
    from lmlab.ilm.infill import IlmInfiller
    from lmlab.ilm.model_dirs import load_ilm_dir

    runtime = select_runtime(device)  # type: ignore[arg-type]
    loaded = load_ilm_dir(model_dir, runtime.device, tokenizer_source)
    tokens = loaded.tokens
    return IlmInfiller(model=loaded.model, tokenizer=loaded.tokenizer, runtime=runtime, start_id=tokens.start_infill,
                       end_id=tokens.end_infill, mask_ids=frozenset(tokens.masks.values()))


@dataclass
class IlmSystem:
    spec: str
    options: InfillOptions

    def __post_init__(self) -> None:
        self.ilm = load_ilm(self.spec.partition(":")[2], self.options.device, self.options.reference_tokenizer)
        self.last_unterminated: list[list[bool]] = []

    def infill(self, items: Sequence[Item]) -> list[list[str]]:
        contexts = [mask_document(doc, spans)[0] for doc, spans in items]
        o = self.options
        results = self.ilm.infill(contexts, decoding=o.decoding, top_p=o.top_p, seed=o.seed,  # type: ignore[arg-type]
                                  max_new_tokens=o.max_new_tokens, batch_size=o.batch_size,
                                  keep_unterminated=o.keep_unterminated)
        self.last_unterminated = [[i >= r.terminated for i in range(len(r.answers))] + [False] * (len(spans) - len(r.answers))
                                  for r, (_, spans) in zip(results, items)]
        return [r.answers + [""] * (len(spans) - len(r.answers)) for r, (_, spans) in zip(results, items)]


@register("ilm")
def _ilm(target: str, options: InfillOptions) -> Infiller:
    return IlmSystem(f"ilm:{target}", options)


@dataclass
class MlmSystem:
    spec: str
    options: InfillOptions

    def __post_init__(self) -> None:
        from transformers import AutoModelForMaskedLM

        from lmlab.tokenization import load_tokenizer

        target = self.spec.partition(":")[2]
        self.tokenizer = load_tokenizer(target)
        if self.tokenizer.mask_token_id is None:
            raise InputError(f"the tokenizer of '{target}' has no mask token: not a masked LM.", path=target)
        try:
            model = AutoModelForMaskedLM.from_pretrained(target)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load a masked LM from '{target}' ({exc.__class__.__name__}).",
                             hint="use a local directory or a cached hub name.") from exc
        self.runtime = select_runtime(self.options.device)  # type: ignore[arg-type]
        self.model = model.to(self.runtime.device).eval()
        self.banned = torch.tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long)

    def _encode(self, doc: str, spans: Sequence[Span]) -> tuple[list[int], list[list[int]]]:
        pieces, answers = split_document(doc, spans)
        tok, body, positions = self.tokenizer, [], []
        for i, piece in enumerate(pieces):
            if i < len(answers) and piece.endswith(" "):
                piece, answer = piece[:-1], " " + answers[i]
            else:
                answer = answers[i] if i < len(answers) else ""
            body += tok(piece, add_special_tokens=False)["input_ids"] if piece else []
            if i < len(answers):
                n = max(1, len(tok(answer, add_special_tokens=False)["input_ids"]))
                positions.append(list(range(len(body), len(body) + n)))
                body += [tok.mask_token_id] * n
        # the tokenizer's own wrapping ([CLS] ... [SEP], <s> ... </s>), read off an empty input
        wrap = list(tok("", add_special_tokens=True)["input_ids"])
        prefix = wrap[:1] if wrap and wrap[0] in (tok.cls_token_id, tok.bos_token_id) else []
        ids = prefix + body + wrap[len(prefix):]
        return ids, [[p + len(prefix) for p in span] for span in positions]

    @torch.inference_mode()
    def infill(self, items: Sequence[Item]) -> list[list[str]]:
        encoded = [self._encode(doc, spans) for doc, spans in items]
        out: list[list[str]] = []
        pad = self.tokenizer.pad_token_id or 0
        for batch in progress(_batches(len(encoded), self.options.batch_size), desc="mlm infill", unit="batches"):
            rows = [encoded[i] for i in batch]
            width = max(len(ids) for ids, _ in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attention = torch.zeros_like(ids)
            for r, (row_ids, _) in enumerate(rows):
                ids[r, :len(row_ids)] = torch.tensor(row_ids)
                attention[r, :len(row_ids)] = 1
            todo = [sorted(p for span in spans for p in span) for _, spans in rows]
            while any(todo):
                logits = self.model(input_ids=ids.to(self.runtime.device),
                                    attention_mask=attention.to(self.runtime.device)).logits.float().cpu()
                logits[..., self.banned] = float("-inf")
                probs = torch.softmax(logits, dim=-1)
                for r, positions in enumerate(todo):
                    if not positions:
                        continue
                    best_p, best_tok = probs[r, positions].max(dim=-1)
                    j = int(best_p.argmax())
                    ids[r, positions[j]] = int(best_tok[j])
                    del positions[j]
            for r, (_, spans) in enumerate(rows):
                out.append([self.tokenizer.decode(ids[r, span].tolist(), skip_special_tokens=True).strip()
                            for span in spans])
        return out


@register("mlm")
def _mlm(target: str, options: InfillOptions) -> Infiller:
    return MlmSystem(f"mlm:{target}", options)


@dataclass
class T5System:
    spec: str
    options: InfillOptions

    def __post_init__(self) -> None:
        from lmlab.modeling import load_model
        from lmlab.tokenization import load_tokenizer

        target = self.spec.partition(":")[2]
        self.tokenizer = load_tokenizer(target)
        self.sentinels: list[int] = []
        for i in range(100):
            token = f"<extra_id_{i}>"
            if token not in self.tokenizer.get_vocab():
                break
            self.sentinels.append(self.tokenizer.convert_tokens_to_ids(token))
        if not self.sentinels:
            raise InputError(f"the tokenizer of '{target}' has no <extra_id_0> sentinel: not a T5-style model.",
                             path=target)
        self.runtime = select_runtime(self.options.device)  # type: ignore[arg-type]
        self.model = load_model(target, "seq2seq").to(self.runtime.device).eval()

    def _parse(self, generated: Sequence[int], k: int) -> list[str]:
        stops = set(self.sentinels) | {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        answers = [""] * k
        current: int | None = None
        collected: list[int] = []
        for token in [*generated, self.tokenizer.eos_token_id]:
            if token in stops:
                if current is not None and current < k and not answers[current]:
                    answers[current] = self.tokenizer.decode(collected, skip_special_tokens=True).strip()
                current = self.sentinels.index(token) if token in self.sentinels else None
                collected = []
            elif current is not None:
                collected.append(token)
        return answers

    @torch.inference_mode()
    def infill(self, items: Sequence[Item]) -> list[list[str]]:
        texts = []
        for doc, spans in items:
            if len(spans) > len(self.sentinels):
                raise InputError(f"{len(spans)} masks but the T5 tokenizer has only {len(self.sentinels)} sentinels.",
                                 key="n_masks")
            pieces, _ = split_document(doc, spans)
            texts.append(pieces[0] + "".join(f"<extra_id_{i}>{p}" for i, p in enumerate(pieces[1:])))
        o, out = self.options, []
        generator_kwargs = {"do_sample": o.decoding == "nucleus", "top_p": o.top_p} if o.decoding == "nucleus" \
            else {"do_sample": False}
        torch.manual_seed(o.seed)
        for batch in progress(_batches(len(texts), o.batch_size), desc="t5 infill", unit="batches"):
            enc = self.tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True).to(self.runtime.device)
            generated = self.model.generate(**enc, max_new_tokens=o.max_new_tokens, num_beams=1, **generator_kwargs)
            for row, i in zip(generated.tolist(), batch):
                out.append(self._parse(row[1:], len(items[i][1])))
        return out


@register("t5")
def _t5(target: str, options: InfillOptions) -> Infiller:
    return T5System(f"t5:{target}", options)
