"""ILM's hierarchical segmentation of a document, exact and fast.

The reference (chrisdonahue/ilm ``string_util.doc_to_hierarchical_offsets``) cuts a
document into paragraphs (non-empty stripped lines), sentences (``nltk.sent_tokenize``,
punkt) and words (``nltk.word_tokenize``: Treebank-style, punctuation included, plus a fix
mapping the ``````/``''`` quote tokens back to ``"`` when they are not in the string), and
locates each unit by a left-to-right ``str.index`` inside its parent.

With this NLTK (every regex routed through the ``regex`` engine under a timeout) that
costs ~0.3 ms per sentence, and ``word_tokenize`` re-runs punkt on every sentence. The
:class:`Segmenter` returns *the same tokens* much faster:

* one punkt instance, loaded once per process;
* a fast path for sentence splitting: when every candidate boundary is ``[.?!]`` followed
  by whitespace and a token, and every period follows a word of letters (inner hyphens or
  apostrophes allowed) that punkt does not treat as an abbreviation, an initial, a number
  or a collocation's first word, punkt's decision is provably "break" everywhere and the
  slices are computed directly; anything else goes to punkt itself;
* a fast path for word tokenization of plain sentences (Latin-script words with inner
  hyphens and at most one apostrophe, commas and colons, one final ``.?!``): the Treebank
  rules reduce to splitting punctuation and the clitics ``'s 'm 'd 'll 're 've n't``, and
  the tokens' offsets are their match positions; anything else (quotes, brackets,
  ellipses, the ``cannot``/``gonna`` contractions, other scripts ...) goes
  to ``NLTKWordTokenizer``.

``tests/test_segmentation.py`` checks the fast paths against NLTK on fuzzed strings and on
a learner corpus; :func:`reference_hierarchical_offsets` is the reference's own code path,
kept as the oracle for tests and the benchmark.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache

import nltk
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.destructive import MacIntyreContractions
from nltk.tokenize.punkt import PunktTokenizer

__all__ = [
    "DocSegments",
    "SegmentationError",
    "Segmenter",
    "locate_tokens",
    "reference_hierarchical_offsets",
]


class SegmentationError(ValueError):
    """A token produced by the tokenizers cannot be found in its parent string."""


@dataclass(frozen=True, slots=True)
class DocSegments:
    """Flat hierarchy of one document, absolute character offsets.

    ``paragraphs[i] = (offset, length, first_sentence, end_sentence)``,
    ``sentences[j] = (offset, length, first_word, end_word)``,
    ``word_offsets[k]`` / ``word_ends[k]`` bound word ``k``, ``word_sentence_ends[k]`` is
    the ``end_word`` of its sentence.
    """

    length: int
    paragraphs: tuple[tuple[int, int, int, int], ...]
    sentences: tuple[tuple[int, int, int, int], ...]
    word_offsets: tuple[int, ...]
    word_ends: tuple[int, ...]
    word_sentence_ends: tuple[int, ...]


def locate_tokens(text: str, tokens: list[str]) -> list[int | None]:
    """Offsets of ``tokens`` found left to right in ``text`` (``None`` if absent), as the reference."""
    offsets: list[int | None] = []
    pos = 0
    for token in tokens:
        found = text.find(token, pos)
        if found < 0:
            offsets.append(None)
        else:
            offsets.append(found)
            pos = found + len(token)
    return offsets


def _quote_fix(text: str, tokens: list[str]) -> list[str]:
    """The reference's ``string_util.word_tokenize`` fix: unfound ``````/``''`` become ``"``."""
    if '"' not in text or not any(t in ("``", "''") for t in tokens):
        return tokens
    offsets = locate_tokens(text, tokens)
    return ['"' if off is None and tok in ("``", "''") else tok for tok, off in zip(tokens, offsets)]


# Letters and digits both regex engines treat as word characters (ASCII, Latin-1, Latin
# Extended-A/B), and letters alone.
_ALNUM = "A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_ALPHA = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
# A plain sentence: words (inner hyphens, at most one apostrophe), optional attached or
# standalone commas/colons, single spaces or runs of spaces, one optional final .?!
_WORD = rf"[{_ALNUM}]+(?:-[{_ALNUM}]+)*(?:'[{_ALNUM}]+)?"
_CHUNK = rf"(?:{_WORD}[,:]?|[,:])"
_PLAIN_SENTENCE = re.compile(rf"{_CHUNK}(?: +{_CHUNK})*(?: *[.?!])?")
# Its tokens, as NLTKWordTokenizer cuts them: each word (split at spaces and before
# punctuation) and each punctuation mark; then a word with an apostrophe is cut before a
# clitic ('s 'm 'd 'll 're 've, in the cases NLTK lists) or before n't/N'T when at least
# one character stays in front; any other apostrophe stays inside its word.
_PLAIN_TOKEN = re.compile(r"[^\s,:.?!]+|[,:.?!]")
_CLITICS = frozenset({"s", "S", "m", "M", "d", "D", "ll", "LL", "re", "RE", "ve", "VE"})
_REALIGN_START = frozenset("\"')]}\u2018\u2019\u201c\u201d\xab\xbb")
# The word before a candidate period: letters, inner hyphens and apostrophes.
_PERIOD_WORD = re.compile(rf"[{_ALPHA}]+(?:[-'][{_ALPHA}]+)*")


def _contraction_literals() -> tuple[str, ...] | None:
    """Lower-case literal cores of NLTK's CONTRACTIONS2/3 (``cannot``, ``gonna``, ``'tis`` ...).

    ``None`` (fast word path disabled) if a pattern is not a plain literal in this NLTK.
    """
    literals = []
    for pattern in (*MacIntyreContractions.CONTRACTIONS2, *MacIntyreContractions.CONTRACTIONS3):
        core = re.sub(r"\(\?i\)|\\b|\(\?#X\)|\(\?=\\s\)|[()]", "", pattern).strip()
        if not re.fullmatch(r"[a-z']+", core):
            return None
        literals.append(core)
    return tuple(literals)


class Segmenter:
    """Paragraphs, sentences and words exactly as the reference, with fast paths.

    Needs NLTK's English ``punkt_tab`` (see :func:`lmlab.ilm.punkt.use_nltk_data`).
    """

    def __init__(self, fast: bool = True) -> None:
        self._punkt = PunktTokenizer("english")
        self._treebank = NLTKWordTokenizer()
        params = self._punkt._params
        self._abbrev = frozenset(params.abbrev_types)
        self._colloc_first = frozenset(first for first, _ in params.collocations)
        self._period_re = re.compile(self._punkt._lang_vars.period_context_re().pattern, re.UNICODE | re.VERBOSE)
        literals = _contraction_literals()
        self._contraction_re = (
            None if literals is None else re.compile("|".join(map(re.escape, literals)), re.IGNORECASE)
        )
        self.fast = fast
        self.fast_hits = {"sentences": 0, "sentences_fallback": 0, "words": 0, "words_fallback": 0}

    # -- sentences ---------------------------------------------------------
    def sentences(self, text: str) -> list[str]:
        """``nltk.sent_tokenize(text)``."""
        if self.fast:
            fast = self._fast_sentences(text)
            if fast is not None:
                self.fast_hits["sentences"] += 1
                return fast
        self.fast_hits["sentences_fallback"] += 1
        return self._punkt.tokenize(text)

    def _fast_sentences(self, text: str) -> list[str] | None:
        # Every candidate must be [.?!] + whitespace + a token not starting with a closing
        # quote/bracket (no realignment). After ? or ! punkt always breaks. After a period it
        # breaks when punkt's last token before it ("word." or "'part." after an apostrophe)
        # is not an abbreviation, an initial, a number or a collocation's first word.
        out: list[str] = []
        last_break = 0
        for match in self._period_re.finditer(text):
            next_tok = match.start("next_tok")
            if next_tok < 0 or text[next_tok] in _REALIGN_START:
                return None
            start = match.start()
            if text[start] == ".":
                word = text[text.rfind(" ", 0, start) + 1 : start]
                if not _PERIOD_WORD.fullmatch(word):
                    return None
                key = word[word.rfind("'") :].lower() if "'" in word else word.lower()
                if (
                    len(key) < 2
                    or key in self._abbrev
                    or key.split("-")[-1] in self._abbrev
                    or key in self._colloc_first
                ):
                    return None
            out.append(text[last_break : match.end()])
            last_break = next_tok
        tail = text[last_break : len(text.rstrip())]
        if tail:
            out.append(tail)
        return out

    # -- words -------------------------------------------------------------
    def words(self, sentence: str) -> list[str]:
        """``ilm.string_util.word_tokenize(sentence)``: ``nltk.word_tokenize`` + the quote fix."""
        tokens: list[str] = []
        for part in self.sentences(sentence):
            fast = self._fast_words(part) if self.fast else None
            if fast is None:
                self.fast_hits["words_fallback"] += 1
                tokens.extend(self._treebank.tokenize(part))
            else:
                self.fast_hits["words"] += 1
                tokens.extend(fast)
        return _quote_fix(sentence, tokens)

    def _fast_words(self, text: str) -> list[str] | None:
        """Treebank tokens of a plain sentence (see module doc), ``None`` if not plain."""
        spans = self._plain_spans(text)
        return None if spans is None else [text[a:b] for a, b in spans]

    def _plain_spans(self, text: str) -> list[tuple[int, int]] | None:
        # A plain sentence has no [.?!] before its end, so punkt keeps it whole; its tokens
        # are exact substrings in order, so their offsets are the match positions.
        if self._contraction_re is None or not _PLAIN_SENTENCE.fullmatch(text):
            return None
        if self._contraction_re.search(text):
            return None
        spans = [m.span() for m in _PLAIN_TOKEN.finditer(text)]
        return _split_clitics(text, spans) if "'" in text else spans

    # -- hierarchy ---------------------------------------------------------
    def segment(self, doc: str) -> DocSegments:
        """Paragraph/sentence/word offsets of ``doc``; raises :class:`SegmentationError`."""
        paragraphs = []
        sentences = []
        word_offsets: list[int] = []
        word_ends: list[int] = []
        sentence_ends: list[int] = []
        for p_text, p_off in _located([p.strip() for p in doc.splitlines() if p.strip()], doc, 0):
            first_sentence = len(sentences)
            located = _located([s.strip() for s in self.sentences(p_text) if s.strip()], p_text, 0)
            spans = self._plain_paragraph_spans(p_text, located) if self.fast else None
            if spans is not None:
                # Plain sentences only: one tokenization of the paragraph (tokens stop at
                # whitespace and punctuation, so none crosses a sentence), cut by offsets.
                base = len(word_offsets)
                starts = [a for a, _ in spans]
                word_offsets += [p_off + a for a in starts]
                word_ends += [p_off + b for _, b in spans]
                for s_text, s_rel in located:
                    lo = base + bisect_left(starts, s_rel)
                    hi = base + bisect_left(starts, s_rel + len(s_text))
                    sentences.append((p_off + s_rel, len(s_text), lo, hi))
                    sentence_ends += [hi] * (hi - lo)
                self.fast_hits["words"] += len(located)
            else:
                for s_text, s_rel in located:
                    s_off = p_off + s_rel
                    first_word = len(word_offsets)
                    words = [w.strip() for w in self.words(s_text) if w.strip()]
                    for w_text, w_off in _located(words, s_text, s_off):
                        word_offsets.append(w_off)
                        word_ends.append(w_off + len(w_text))
                    end_word = len(word_offsets)
                    sentences.append((s_off, len(s_text), first_word, end_word))
                    sentence_ends += [end_word] * (end_word - first_word)
            paragraphs.append((p_off, len(p_text), first_sentence, len(sentences)))
        return DocSegments(
            len(doc), tuple(paragraphs), tuple(sentences), tuple(word_offsets), tuple(word_ends), tuple(sentence_ends)
        )

    def _plain_paragraph_spans(self, text: str, located: list[tuple[str, int]]) -> list[tuple[int, int]] | None:
        """Token spans of a paragraph whose sentences are all plain, else ``None``."""
        if self._contraction_re is None or self._contraction_re.search(text):
            return None
        fullmatch = _PLAIN_SENTENCE.fullmatch
        if not all(fullmatch(s_text) for s_text, _ in located):
            return None
        spans = [m.span() for m in _PLAIN_TOKEN.finditer(text)]
        return _split_clitics(text, spans) if "'" in text else spans


def _split_clitics(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in spans:
        cut = text.find("'", start, end)
        if cut >= 0:
            right = text[cut + 1 : end]
            if right in _CLITICS:
                out += ((start, cut), (cut, end))
                continue
            if cut - start >= 2 and (text[cut - 1], right) in (("n", "t"), ("N", "T")):
                out += ((start, cut - 1), (cut - 1, end))
                continue
        out.append((start, end))
    return out


def _located(tokens: list[str], parent: str, base: int) -> list[tuple[str, int]]:
    offsets = locate_tokens(parent, tokens)
    if None in offsets:
        missing = tokens[offsets.index(None)]
        raise SegmentationError(f"Tokenizer produced token not found in string: {missing!r}")
    return [(tok, base + off) for tok, off in zip(tokens, offsets)]  # type: ignore[operator]


def _reference_word_tokenize(sentence: str) -> list[str]:
    return _quote_fix(sentence, nltk.word_tokenize(sentence))


@lru_cache(maxsize=128)
def reference_hierarchical_offsets(doc: str) -> tuple:
    """The reference's nested ``(offset, length, children)`` tree, via plain NLTK calls (slow).

    Same code path as ``doc_to_hierarchical_offsets`` (with its ``lru_cache(128)``); the
    oracle for :class:`Segmenter` in tests and the faithful side of ``bench/bench_masking.py``.
    """
    levels = [
        lambda d: [d],
        lambda d: [p.strip() for p in d.splitlines() if p.strip()],
        lambda p: [s.strip() for s in nltk.sent_tokenize(p) if s.strip()],
        lambda s: [w.strip() for w in _reference_word_tokenize(s) if w.strip()],
    ]

    def recurse(text: str, depth: int, base: int) -> tuple:
        tokens = levels[depth](text)
        located = _located(tokens, text, base)
        if depth == len(levels) - 1:
            return tuple((off, len(tok)) for tok, off in located)
        return tuple((off, len(tok), recurse(tok, depth + 1, off)) for tok, off in located)

    return recurse(doc, 0, 0)[0]
