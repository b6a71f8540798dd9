"""The fast segmenter returns exactly the reference's (NLTK's) paragraphs, sentences and words."""

from __future__ import annotations

import random

import nltk
import pytest

from lmlab.ilm.segmentation import (
    SegmentationError,
    Segmenter,
    _quote_fix,
    locate_tokens,
    reference_hierarchical_offsets,
)

WORDS = [
    "I", "a", "the", "Mr", "Dr", "etc", "e.g", "cannot", "gonna", "wanna", "don't", "can't", "CAN'T", "Don'T",
    "n't", "xn't", "o'clock", "I'm", "it's", "It'S", "they're", "we've", "I'll", "I'LL", "students'", "'tis",
    "d'ye", "more'n", "2020", "3", "well-known", "x-n't", "São", "ação", "ſtar", "ıt", "rock'n'roll", "U.S",
    "a.m", "it's2", "John", "went", "home", "He", "said", "No", "St", "vs", "e-mail", "Inc", "co",
]
PUNCT = [",", ":", ".", "?", "!", ";", "(", ")", '"', "''", "``", "'", "-", "--", "...", "?!", "*", "$", "[", "]"]


PLAIN_WORDS = ["I", "the", "house", "don't", "can't", "it's", "I'm", "well-known", "São", "big", "o'clock", "they're",
               "2020", "students", "Paulo", "we'll", "x-n't", "ação"]


def _random_sentence(rng: random.Random, noise: float, words: list[str] = WORDS) -> str:
    parts = []
    for _ in range(rng.randint(1, 9)):
        word = rng.choice(words)
        x = rng.random() * noise
        if x < 0.15:
            word += rng.choice([",", ":"])
        elif x < 0.2:
            word = rng.choice(PUNCT)
        elif x < 0.3:
            word += rng.choice([".", "?", "!"])
        elif x < 0.33:
            word = rng.choice(PUNCT) + word
        parts.append(word)
    text = rng.choice([" ", " ", "  "]).join(parts)
    if rng.random() < 0.6:
        text += rng.choice([".", "?", "!", " ?", " .", "", '."', "..."])
    return text


def _tree(segments) -> tuple:
    paragraphs = []
    for p_off, p_len, s_lo, s_hi in segments.paragraphs:
        sentences = []
        for s_off, s_len, w_lo, w_hi in segments.sentences[s_lo:s_hi]:
            words = tuple(
                (segments.word_offsets[k], segments.word_ends[k] - segments.word_offsets[k]) for k in range(w_lo, w_hi)
            )
            sentences.append((s_off, s_len, words))
        paragraphs.append((p_off, p_len, tuple(sentences)))
    return (0, segments.length, tuple(paragraphs))


@pytest.fixture(scope="module")
def segmenter(nltk_data) -> Segmenter:
    return Segmenter()


@pytest.mark.parametrize("noise", [1.0, 3.0])
def test_fast_paths_equal_nltk_on_fuzzed_text(segmenter: Segmenter, noise: float) -> None:
    rng = random.Random(int(noise * 10))
    fast_words = fast_sentences = 0
    for _ in range(250):
        sentence = _random_sentence(rng, noise)
        expected = nltk.word_tokenize(sentence)
        assert segmenter.words(sentence) == _quote_fix(sentence, expected), sentence
        spans = segmenter._plain_spans(sentence)
        if spans is not None:
            fast_words += 1
            assert [sentence[a:b] for a, b in spans] == expected, sentence
        paragraph = " ".join(_random_sentence(rng, noise) for _ in range(rng.randint(1, 4))).strip()
        fast_sentences += segmenter._fast_sentences(paragraph) is not None
        assert segmenter.sentences(paragraph) == nltk.sent_tokenize(paragraph), paragraph
    assert fast_words > 20 and fast_sentences > 50  # both fast paths were exercised


def test_hierarchy_equals_reference_on_learner_text(segmenter: Segmenter) -> None:
    from lmlab.ilm.corpus import generate_learner_corpus

    docs = [str(t).strip() for t in generate_learner_corpus(40, seed=3).text]
    docs += [
        'He said "hi" to me. Then he left.\nMr. Smith went to Washington at 3 p.m. yesterday!',
        "I can't go (really) -- sorry... Bye!",
        "  First paragraph.  \n\n   \nSecond one, with    spaces ?",
    ]
    for doc in docs:
        assert _tree(segmenter.segment(doc)) == reference_hierarchical_offsets(doc), doc
    assert segmenter.fast_hits["words"] > segmenter.fast_hits["words_fallback"]


def test_cant_and_punctuation_words(segmenter: Segmenter) -> None:
    doc = "I can't agree, because it's late."
    seg = segmenter.segment(doc)
    words = [doc[a:b] for a, b in zip(seg.word_offsets, seg.word_ends)]
    assert words == ["I", "ca", "n't", "agree", ",", "because", "it", "'s", "late", "."]
    # "ca" and "n't" touch: a span boundary there splits a BPE token (see MaskStats.adjacent_span_pairs).
    assert seg.word_ends[1] == seg.word_offsets[2]
    assert seg.word_sentence_ends == (10,) * 10


def test_quote_fix_and_unlocatable_tokens(segmenter: Segmenter) -> None:
    doc = 'She said "yes" to him.'
    seg = segmenter.segment(doc)
    assert '"' in [doc[a:b] for a, b in zip(seg.word_offsets, seg.word_ends)]
    bad = "Ends with '' two apostrophes''."
    with pytest.raises(SegmentationError):
        segmenter.segment(bad)
    with pytest.raises(ValueError):
        reference_hierarchical_offsets(bad)


def test_locate_tokens_left_to_right() -> None:
    assert locate_tokens("a b a", ["a", "a", "b"]) == [0, 4, None]


def test_documents_of_fuzzed_paragraphs_equal_reference(segmenter: Segmenter) -> None:
    rng = random.Random(11)
    plain = 0
    for _ in range(120):
        paragraphs = []
        for _ in range(rng.randint(1, 3)):
            sep = rng.choice([" ", " ", "  ", "\t", " \u00a0"])
            noise, words = rng.choice([(1.0, WORDS), (3.0, WORDS), (10.0, PLAIN_WORDS)])  # larger: fewer odd tokens
            paragraphs.append(sep.join(_random_sentence(rng, noise, words) for _ in range(rng.randint(1, 4))))
        doc = rng.choice(["\n", "\n\n", " \n "]).join(paragraphs)
        try:
            expected = reference_hierarchical_offsets(doc)
        except ValueError:
            with pytest.raises(SegmentationError):
                segmenter.segment(doc)
            continue
        segments = segmenter.segment(doc)
        plain += sum(  # paragraphs that took the one-tokenization path
            segmenter._plain_paragraph_spans(p.strip(), [(x.strip(), 0) for x in segmenter.sentences(p.strip())])
            is not None
            for p in doc.splitlines()
            if p.strip()
        )
        assert _tree(segments) == expected, doc
    assert plain > 20
