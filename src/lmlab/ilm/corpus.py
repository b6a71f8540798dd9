"""The embedded learner-English sample corpus: an EFCAMDAT-format table generated from a seed.

EFCAMDAT itself cannot be redistributed, so the offline default of the ILM family is a
synthetic stand-in with the same columns (``id, text, cefr, l1, topic, task_id, n_words``),
the real corpus' CEFR and L1 mixes (exact up to rounding, by largest remainder) and writing
that differs by level the way learner writing does:

* length grows from A1 (a 25-70 word target, one or two paragraphs) to C1 (190-340 words, 3-5);
* templates move from short simple-present sentences (A1) to past tenses and ``because``
  (A2/B1) to subordinate clauses, inversions and a rich vocabulary (B2/C1), and word banks
  are drawn at the level's tier;
* learner errors ("I am agree", "he go", "informations", dropped articles, "since two
  years", "I have 25 years", misspellings, ...) hit half the A1 sentences and 3 % of the C1
  ones, weighted by the writer's L1 (article drops for Mandarin/Russian/Japanese,
  "I have N years" for Romance languages, adverb order for German, ...).

Everything is drawn from one ``random.Random(seed)``: the same seed gives the same table.
Texts are unique (a duplicate is re-drawn), since the splitter drops duplicate texts.
"""

from __future__ import annotations

import bisect
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from lmlab.ilm import templates as T
from lmlab.ilm.params import LEVELS, SampleParams  # moved there (no pandas) for the params check; re-exported

__all__ = ["SampleParams", "generate_learner_corpus", "largest_remainder", "COLUMNS"]

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("id", "text", "cefr", "l1", "topic", "task_id", "n_words")
_SLOT = re.compile(r"\{(\w+)\}")
_STARTERS = {"the", "my", "it", "there", "we", "they", "he", "she", "this", "people", "our", "some", "many",
             "most", "what", "when", "if", "last", "next", "on", "in", "at", "after", "yesterday", "every",
             "public", "tourists", "family", "housing", "learning", "critics", "few", "living", "commuting"}


def largest_remainder(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """Split ``total`` into integer counts proportional to ``weights`` (Hamilton's method, stable ties)."""
    norm = sum(weights.values())
    quotas = {k: total * w / norm for k, w in weights.items()}
    counts = {k: int(q) for k, q in quotas.items()}
    order = sorted(weights, key=lambda k: (-(quotas[k] - counts[k]), list(weights).index(k)))
    for k in order[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


# ----- learner errors: each returns the changed sentence, or None when it does not apply -----

_THIRD = {"likes": "like", "lives": "live", "works": "work", "goes": "go", "has": "have", "does": "do",
          "watches": "watch", "plays": "play", "wants": "want", "thinks": "think", "gets": "get",
          "makes": "make", "loves": "love", "helps": "help", "moves": "move", "revolves": "revolve"}
_THIRD_RE = re.compile(r"\b((?:[Hh]e|[Ss]he|[Ii]t|[Mm]y (?:father|mother|brother|sister|friend|boss|colleague|"
                       r"grandmother|family|house|city|job)) )(" + "|".join(_THIRD) + r")\b")
_SPELLING = {"because": "becouse", "beautiful": "beautifull", "really": "realy", "which": "wich",
             "different": "diferent", "friend": "freind", "friends": "freinds", "restaurant": "restaurent",
             "comfortable": "confortable", "necessary": "neccessary", "interesting": "intresting",
             "receive": "recieve", "believe": "beleive", "government": "goverment", "until": "untill",
             "favourite": "favorit", "family": "familly", "weather": "wheather", "tomorrow": "tomorow",
             "expensive": "expensiv", "colleagues": "collegues", "beginning": "begining", "people": "peple"}
_SPELLING_RE = re.compile(r"\b(" + "|".join(_SPELLING) + r")\b")
_PAST = {"went": ("go", "goed"), "bought": ("buy", "buyed"), "saw": ("see", "seed"), "gave": ("give", "gived"),
         "started": ("start",), "moved": ("move",), "liked": ("like",), "stayed": ("stay",), "had": ("have",),
         "was": ("is",), "called": ("call",), "ordered": ("order",), "woke": ("wake",)}
_PAST_RE = re.compile(r"\b(" + "|".join(_PAST) + r")\b")
_PREPS = [(re.compile(p), r) for p, r in (
    (r"\bat the weekend\b", "in the weekend"), (r"\bon (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b",
                                               r"in \1"),
    (r"\blisten to\b", "listen"), (r"\bdepends on\b", "depends of"), (r"\binterested in\b", "interested on"),
    (r"\bgood at\b", "good in"), (r"\bto complain about\b", "to complain for"), (r"\bmarried\b", "married with"),
    (r"\bin (January|March|May|June|July|August|October|December)\b", r"on \1"), (r"\barrived\b", "arrived to"))]
_COMPAR = [(re.compile(p), r) for p, r in ((r"\bbetter\b", "more better"), (r"\bmore expensive\b", "more expensiver"),
                                           (r"\bfar easier\b", "more easier"), (r"\bbest\b", "most best"))]


def _sub(pattern: str | re.Pattern[str], repl: str) -> Callable[[str, random.Random], str | None]:
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern

    def apply(s: str, rng: random.Random) -> str | None:
        out = rx.sub(repl, s, count=1)
        return out if out != s else None

    return apply


def _third_person(s: str, rng: random.Random) -> str | None:
    return _THIRD_RE.sub(lambda m: m.group(1) + _THIRD[m.group(2)], s, count=1) if _THIRD_RE.search(s) else None


def _spelling(s: str, rng: random.Random) -> str | None:
    hits = _SPELLING_RE.findall(s)
    if not hits:
        return None
    word = rng.choice(hits)
    return re.sub(rf"\b{word}\b", _SPELLING[word], s, count=1)


def _past(s: str, rng: random.Random) -> str | None:
    m = _PAST_RE.search(s)
    return s[: m.start()] + rng.choice(_PAST[m.group(1)]) + s[m.end():] if m else None


def _article_drop(s: str, rng: random.Random) -> str | None:
    hits = [m for m in re.finditer(r"\b(the|a|an) (?=[a-z])", s)]
    if not hits:
        return None
    m = rng.choice(hits)
    return s[: m.start()] + s[m.end():]


def _one_of(rules: Sequence[tuple[re.Pattern[str], str]]) -> Callable[[str, random.Random], str | None]:
    def apply(s: str, rng: random.Random) -> str | None:
        hits = [(rx, r) for rx, r in rules if rx.search(s)]
        if not hits:
            return None
        rx, r = rng.choice(hits)
        return rx.sub(r, s, count=1)

    return apply


def _no_final_stop(s: str, rng: random.Random) -> str | None:
    return s[:-1] if s.endswith(".") else None


_ROMANCE = ("Portuguese", "Spanish", "Italian", "French")
# name -> (function, default weight, {L1: weight})
ERRORS: dict[str, tuple[Callable[[str, random.Random], str | None], float, dict[str, float]]] = {
    "be_agree": (_sub(r"\bI (do not |don't )?agree\b", "I am agree"), 2.0,
                 {"French": 5, "Spanish": 4, "Portuguese": 4, "Italian": 4}),
    "third_person": (_third_person, 2.0, {"Mandarin": 5, "Japanese": 4, "Turkish": 3, "Arabic": 3}),
    "be_plus_base": (_sub(r"\b([Hh]e|[Ss]he) (likes|works|goes|watches|plays|lives)\b", r"\1 is \2"), 0.2,
                     {"Arabic": 3}),
    "uncountable": (_sub(r"\b(information|advice|furniture|homework|equipment)\b", r"\1s"), 2.0,
                    {"Portuguese": 3, "Spanish": 3, "French": 3, "Italian": 3, "German": 3, "Russian": 3}),
    "article_drop": (_article_drop, 1.0, {"Mandarin": 5, "Russian": 5, "Japanese": 5, "Turkish": 4, "Arabic": 2}),
    "article_extra": (_sub(r"\b([Pp]eople|life|society|nature|money|technology) ", r"the \1 "), 0.5,
                      {"Arabic": 4, "Spanish": 3, "Portuguese": 3, "French": 3, "Italian": 3, "German": 2}),
    "since_for": (_sub(r"\bfor (two|three|five|six|ten|many|\d+) (years|months|weeks)\b", r"since \1 \2"), 1.5,
                  {"French": 5, "German": 5, "Spanish": 4, "Italian": 4, "Portuguese": 4, "Russian": 3}),
    "have_age": (_sub(r"\bI am (\d+) years old\b", r"I have \1 years"), 0.5, dict.fromkeys(_ROMANCE, 6)),
    "spelling": (_spelling, 1.5, {"Arabic": 2.5}),
    "past_tense": (_past, 1.5, {"Mandarin": 4, "Japanese": 3, "Turkish": 2}),
    "people_is": (_sub(r"\b([Pp]eople|[Tt]here) are\b", r"\1 is"), 1.0, {"Portuguese": 2, "Spanish": 2, "Arabic": 2}),
    "comparative": (_one_of(_COMPAR), 1.0, {}),
    "adverb_order": (_sub(r"\bI (like|love|enjoy) ([a-z ]+?) very much\b", r"I \1 very much \2"), 0.5,
                     {"German": 5, "French": 3, "Italian": 3, "Spanish": 2, "Russian": 2}),
    "subject_drop": (_sub(r"\b[Ii]t is (important|necessary|difficult|easy|expensive|a )", r"is \1"), 0.3,
                     {"Spanish": 5, "Portuguese": 5, "Italian": 5}),
    "very_verb": (_sub(r"\bI (really )?(like|love|want|enjoy)\b", r"I very \2"), 0.3, {"Mandarin": 5, "Japanese": 2}),
    "preposition": (_one_of(_PREPS), 1.5, {**dict.fromkeys(_ROMANCE, 3), "Russian": 2.5, "German": 2.5}),
    "make_do": (_sub(r"\b(have|do|take) (a party|my homework|a photo|a mistake|a decision)\b", r"make \2"), 1.0,
                {"German": 3, "Russian": 3, "Spanish": 2, "Portuguese": 2}),
    "punct_space": (_sub(r"([a-z])([?!:])", r"\1 \2"), 0.1, {"French": 6}),
    "lowercase_i": (_sub(r"(?<= )I(?= )", "i"), 0.8, {}),
    "no_final_stop": (_no_final_stop, 0.6, {}),
    "false_friend": (_sub(r"\b(currently|at the moment)\b", "actually"), 0.3, {"Portuguese": 3, "Spanish": 3}),
}


def _cumulative(weights: Sequence[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _weighted(items: Sequence[str], cum: Sequence[float], rng: random.Random) -> str:
    """``rng.choices(items, weights)[0]`` without its per-call overhead (this is the hot path)."""
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


_ERROR_NAMES = list(ERRORS)
_ERROR_CUM = {l1: _cumulative([ERRORS[n][2].get(l1, ERRORS[n][1]) for n in _ERROR_NAMES]) for l1 in T.L1_MIX}
_DEFAULT_CUM = _cumulative([ERRORS[n][1] for n in _ERROR_NAMES])


def _add_error(s: str, l1: str, rng: random.Random) -> str:
    """Apply one learner error drawn by the L1's weights (up to 4 draws until one applies)."""
    cum = _ERROR_CUM.get(l1, _DEFAULT_CUM)
    for _ in range(4):
        out = ERRORS[_weighted(_ERROR_NAMES, cum, rng)][0](s, rng)
        if out:
            return out
    return s


# ----- document assembly -----

_TIER_CUM = {lv: (list(mix), _cumulative(list(mix.values()))) for lv, mix in T.TIER_MIX.items()}
# Tiers a level falls back to when its drawn tier's templates are used up (C1 never writes A1 sentences).
_FALLBACK = {"A1": ("lo",), "A2": ("lo", "mid"), "B1": ("mid", "lo"), "B2": ("hi", "mid"), "C1": ("hi", "mid")}
_ORDER = {lv: {t: (t, *(f for f in fb if f != t)) for t in ("lo", "mid", "hi")} for lv, fb in _FALLBACK.items()}


def _pick_tier(level: str, rng: random.Random, allowed: Sequence[str] = ("lo", "mid", "hi")) -> str:
    tiers, cum = _TIER_CUM[level]
    tier = _weighted(tiers, cum, rng)
    if tier in allowed:
        return tier
    return next((t for t in _FALLBACK[level] if t in allowed), allowed[0])


def _pick(seq: Sequence[str], rng: random.Random) -> str:
    """``rng.choice`` at a fraction of its cost (one float instead of rejection-sampled bits)."""
    return seq[int(rng.random() * len(seq))]


_PARTS: dict[str, list[str]] = {}


def _expand(template: str, level: str, persona: Mapping[str, str], rng: random.Random) -> str:
    """Fill the ``{slot}``s of a template (split once into literal/slot parts) and capitalise it."""
    parts = _PARTS.get(template)
    if parts is None:
        parts = _PARTS[template] = _SLOT.split(template)  # literal, slot, literal, slot, ...
    if len(parts) == 1:
        out = template
    else:
        filled = parts[:]
        for k in range(1, len(parts), 2):
            key = parts[k]
            if key in persona:
                filled[k] = persona[key]
                continue
            bank = T.BANKS[key]
            if isinstance(bank, dict):
                bank = bank[_pick_tier(level, rng, tuple(bank))]
            filled[k] = _pick(bank, rng)
        out = "".join(filled)
    return out[0].upper() + out[1:]


def _lowerable(s: str) -> bool:
    """True when ``s`` can continue a sentence: it starts with "I" or a common lower-case-able word."""
    first = s.split(" ", 1)[0].rstrip(",")
    return first in ("I", "I'm", "I've") or first.lower() in _STARTERS


def _lower_start(s: str) -> str:
    return s if s.startswith(("I ", "I'")) else s[0].lower() + s[1:]


def _persona(l1: str, rng: random.Random) -> dict[str, str]:
    p = T.PERSONAS[l1]
    return {"name": _pick(p["names"], rng), "surname": _pick(p["surnames"], rng), "city": _pick(p["cities"], rng),
            "country": str(p["country"]), "nationality": str(p["nationality"]), "lang": str(p["lang"]),
            "age": str(rng.randint(16, 55)), "friend": _pick(T.FRIENDS, rng)}


def _document(level: str, l1: str, topic: str, rng: random.Random) -> str:
    """One learner text: opening, body sentences up to a word target, closing, errors, paragraphs."""
    spec = T.TOPICS[topic]
    persona = _persona(l1, rng)
    target = rng.randint(*T.WORDS[level])
    pools: dict[tuple[int, str], list[str]] = {}
    sources = (spec["body"], T.GENERIC)

    def draw() -> str | None:
        order = _ORDER[level][_pick_tier(level, rng)]
        for k, source in enumerate(sources):
            for t in order:
                pool = pools.get((k, t))
                if pool is None:
                    pool = pools[(k, t)] = list(source.get(t, ()))
                if pool:  # draw without replacement: swap a random template to the end and pop it
                    j = int(rng.random() * len(pool))
                    pool[j], pool[-1] = pool[-1], pool[j]
                    return _expand(pool.pop(), level, persona, rng)
        return None

    opening = _expand(_pick(spec["open"][_pick_tier(level, rng, tuple(spec["open"]))], rng), level, persona, rng)
    body: list[str] = []
    words = len(opening.split())
    while words < target and (s := draw()) is not None:
        body.append(s)
        words += s.count(" ") + 1
    closing = _expand(_pick(spec["close"][_pick_tier(level, rng, tuple(spec["close"]))], rng), level, persona, rng)

    sentences = [opening]
    join_p, opener_p = T.JOIN_P[level], T.OPENER_P[level]
    i = 0
    while i < len(body):
        s = body[i]
        if i + 1 < len(body) and s.endswith(".") and rng.random() < join_p and _lowerable(body[i + 1]):
            s = f"{s[:-1]} {_pick(T.CONNECTORS[level], rng)} {_lower_start(body[i + 1])}"
            i += 1
        if rng.random() < opener_p and _lowerable(s):
            s = f"{_pick(T.OPENERS[level], rng)} {_lower_start(s)}"
        sentences.append(s)
        i += 1
    sentences.append(closing)
    p_err = T.ERROR_P[level]
    for k, s in enumerate(sentences):
        if rng.random() < p_err:
            s = _add_error(s, l1, rng)
            if rng.random() < p_err:
                s = _add_error(s, l1, rng)
            sentences[k] = s

    n_par = min(rng.randint(*T.PARAGRAPHS[level]), len(sentences))
    cuts = sorted(rng.sample(range(1, len(sentences)), n_par - 1)) if n_par > 1 else []
    bounds = [0, *cuts, len(sentences)]
    lines = [" ".join(sentences[a:b]) for a, b in zip(bounds, bounds[1:])]
    if "email" in spec:
        greeting = _expand(_pick(spec["email"], rng), level, persona, rng)
        lines = [greeting, *lines, _pick(spec["signoff"], rng), persona["name"]]
    return "\n".join(lines)


def generate_learner_corpus(n_documents: int = 36000, seed: int = 0) -> pd.DataFrame:
    """Generate the sample corpus as a DataFrame with :data:`COLUMNS` (pure; same seed, same table)."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for level, n_level in largest_remainder(T.CEFR_MIX, n_documents).items():
        for l1, n in largest_remainder(T.L1_MIX, n_level).items():
            rows.extend([(level, l1)] * n)
    rng.shuffle(rows)
    topics = list(T.TOPICS)
    topic_cum = [_cumulative([T.TOPICS[t]["weights"][li] for t in topics]) for li in range(len(LEVELS))]
    seen: set[str] = set()
    records = []
    for i, (level, l1) in enumerate(rows, start=1):
        li = LEVELS.index(level)
        for _ in range(50):
            topic = _weighted(topics, topic_cum[li], rng)
            text = _document(level, l1, topic, rng)
            if text not in seen:
                break
        else:  # pragma: no cover - only tiny corpora with huge n could exhaust the templates
            text = f"{text}\nDocument {i}."
        seen.add(text)
        records.append((i, text, level, l1, topic, (li + 1) * 100 + topics.index(topic) + 1, len(text.split())))
    logger.info("generated %d learner documents (seed %d)", len(records), seed)
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))
