"""General English text for the monotonic family: an embedded sample, splits, token-id examples.

The embedded default is a deterministic, seeded generator of encyclopedia-like and news-like
paragraphs (fictional places, people, species, markets, matches, weather) so the pipeline runs
offline; users point ``monotonic.data.text`` at any corpus (Pile, Gutenberg...) in one of the
formats :func:`lmlab.tokenization.iter_corpus_texts` reads (a text file with one document per
line, a JSONL file, a CSV column).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmlab.errors import InputError
from lmlab.inputs import read_jsonl

if TYPE_CHECKING:  # annotations only: the data stages (mono_sample, mono_split) import no transformers
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

__all__ = ["SampleParams", "SplitParams", "generate_general_text", "split_texts", "encode_fixed", "special_token_ids", "read_split",
           "split_jsonl"]

_TOWNS = ["Arden", "Belmora", "Carridge", "Dunmore", "Elstow", "Farrow", "Glenhaven", "Harlow", "Istvan",
          "Jarrow", "Kelmscott", "Lindfield", "Marrow Bay", "Northcliff", "Oakridge", "Pellham", "Quarry End",
          "Redwater", "Saltmarsh", "Thornbury", "Upton Vale", "Westmere", "Yarrow", "Zennor"]
_REGIONS = ["the northern hills", "the river delta", "the eastern plains", "the coastal lowlands", "the high plateau",
            "the southern valleys", "the lake district", "the western forests"]
_RIVERS = ["Aln", "Brent", "Colne", "Derwent", "Esk", "Frome", "Goyt", "Hull", "Isbourne", "Kennet", "Lune", "Mole"]
_INDUSTRIES = ["fishing", "wool", "shipbuilding", "pottery", "coal mining", "brewing", "farming", "printing",
               "glassmaking", "tourism", "textiles", "timber"]
_FIRST = ["Anna", "Bernard", "Clara", "Daniel", "Elena", "Felix", "Grace", "Henry", "Irene", "James", "Karin",
          "Leo", "Maria", "Nathan", "Olga", "Peter", "Rosa", "Samuel", "Tessa", "Victor"]
_LAST = ["Ashby", "Brandt", "Calloway", "Duval", "Eriksen", "Fischer", "Garnier", "Holloway", "Ivanova", "Jensen",
         "Keller", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka"]
_FIELDS = ["chemistry", "astronomy", "botany", "geology", "mathematics", "medicine", "linguistics", "physics",
           "economics", "zoology"]
_DISCOVERIES = ["a new method for measuring the age of rocks", "the first reliable map of the night sky",
                "a vaccine against a common fever", "the structure of a rare crystal", "a theory of river erosion",
                "a faster way to solve large equations", "the migration routes of several birds",
                "a cheap process for making clean water"]
_ANIMALS = ["fox", "heron", "beetle", "otter", "lizard", "moth", "salmon", "owl", "hare", "frog", "bat", "crane"]
_COLOURS = ["brown", "grey", "green", "black", "red", "pale yellow", "silver", "dark blue"]
_FOODS = ["insects", "small fish", "seeds", "berries", "leaves", "worms", "snails", "grasses"]
_HABITATS = ["wetlands", "old forests", "rocky shores", "open grassland", "mountain streams", "sand dunes"]
_TEAMS = ["Rovers", "United", "Athletic", "City", "Wanderers", "Harriers", "Albion", "Rangers"]
_COMPANIES = ["Northwind Foods", "Bright Rail", "Harbor Steel", "Keystone Bank", "Meadow Energy", "Orbit Telecom",
              "Pinecrest Motors", "Silverline Media"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_WEATHER = ["heavy rain", "strong winds", "thick fog", "bright sunshine", "light snow", "thunderstorms"]


def _town_entry(r: random.Random) -> list[str]:
    town, river = r.choice(_TOWNS), r.choice(_RIVERS)
    year = r.randint(1100, 1850)
    pop = r.randint(2, 480) * 100
    return [
        f"{town} is a town in {r.choice(_REGIONS)}, on the banks of the River {river}.",
        f"It was first recorded in {year} as a small market settlement.",
        f"For many years its economy depended on {r.choice(_INDUSTRIES)} and later on {r.choice(_INDUSTRIES)}.",
        f"At the last census the town had a population of about {pop:,} people.",
        f"The old bridge over the {river} was rebuilt in {year + r.randint(40, 160)}.",
        f"Today {town} is known for its {r.choice(['museum', 'cathedral', 'harbour', 'market', 'library'])} "
        f"and its annual {r.choice(['music', 'food', 'book', 'flower'])} festival.",
    ]


def _person_entry(r: random.Random) -> list[str]:
    name = f"{r.choice(_FIRST)} {r.choice(_LAST)}"
    born = r.randint(1780, 1960)
    field = r.choice(_FIELDS)
    return [
        f"{name} (born {born} in {r.choice(_TOWNS)}) was a scientist who worked in {field}.",
        f"After studying at the university of {r.choice(_TOWNS)}, {name.split()[0]} became a professor in {born + r.randint(25, 40)}.",
        f"{name.split()[0]} is best known for {r.choice(_DISCOVERIES)}.",
        "The work was not accepted at first, but later researchers confirmed most of its results.",
        f"{name.split()[0]} wrote {r.randint(2, 30)} books and trained many students in {field}.",
        f"A prize in {field} is named in {r.choice(['her', 'his', 'their'])} honour.",
    ]


def _species_entry(r: random.Random) -> list[str]:
    animal = r.choice(_ANIMALS)
    adj = r.choice(["common", "lesser", "great", "spotted", "northern", "river"])
    return [
        f"The {adj} {animal} is a species found mainly in {r.choice(_HABITATS)}.",
        f"Adults are {r.choice(_COLOURS)} with {r.choice(_COLOURS)} markings and grow to about {r.randint(3, 90)} centimetres.",
        f"It feeds on {r.choice(_FOODS)} and {r.choice(_FOODS)}, usually at {r.choice(['night', 'dawn', 'dusk', 'midday'])}.",
        f"Breeding takes place in {r.choice(_MONTHS)}, and each pair raises {r.randint(1, 8)} young.",
        f"Its numbers have {r.choice(['fallen', 'risen', 'stayed stable'])} since the loss of many {r.choice(_HABITATS)}.",
    ]


def _match_report(r: random.Random) -> list[str]:
    home, away = r.sample(_TOWNS, 2)
    t1, t2 = r.choice(_TEAMS), r.choice(_TEAMS)
    g1, g2 = r.randint(0, 5), r.randint(0, 5)
    scorer = f"{r.choice(_FIRST)} {r.choice(_LAST)}"
    return [
        f"{home} {t1} beat {away} {t2} {max(g1, g2) + 1}-{min(g1, g2)} on {r.choice(_DAYS)} in front of {r.randint(2, 60):,},000 fans."
        if g1 != g2 else f"{home} {t1} and {away} {t2} drew {g1}-{g1} on {r.choice(_DAYS)}.",
        f"{scorer} scored in the {r.randint(2, 89)}th minute after a long pass from the left.",
        "The coach said the team had played well but still needed to improve its defence.",
        f"The result leaves {home} in {r.choice(['first', 'second', 'third', 'fifth', 'eighth'])} place in the league.",
        f"The next match is against {r.choice(_TOWNS)} {r.choice(_TEAMS)} in {r.choice(_MONTHS)}.",
    ]


def _market_report(r: random.Random) -> list[str]:
    company = r.choice(_COMPANIES)
    pct = r.randint(1, 19)
    return [
        f"Shares in {company} {r.choice(['rose', 'fell'])} by {pct} percent on {r.choice(_DAYS)} after the company published its results.",
        f"Profits for the year were {r.randint(2, 900)} million, {r.choice(['up', 'down'])} from the year before.",
        f"The chief executive said demand for its {r.choice(['services', 'products', 'trains', 'loans'])} "
        f"had been {r.choice(['strong', 'weak', 'steady'])} in {r.choice(_REGIONS)}.",
        f"Analysts expect interest rates to {r.choice(['rise', 'fall', 'stay the same'])} in {r.choice(_MONTHS)}.",
        f"The company plans to open {r.randint(2, 40)} new offices and hire about {r.randint(1, 50) * 100} workers.",
    ]


def _weather_report(r: random.Random) -> list[str]:
    place = r.choice(_TOWNS)
    return [
        f"Forecasters have warned of {r.choice(_WEATHER)} across {r.choice(_REGIONS)} this {r.choice(_DAYS)}.",
        f"Temperatures in {place} are expected to reach {r.randint(-5, 34)} degrees in the afternoon.",
        f"Several roads near the River {r.choice(_RIVERS)} were closed after {r.choice(_WEATHER)} overnight.",
        "Residents are advised to check the latest travel news before they leave home.",
        f"Conditions should improve by the end of the week, with {r.choice(_WEATHER)} in the south.",
    ]


_GENERATORS = (_town_entry, _person_entry, _species_entry, _match_report, _market_report, _weather_report)


def generate_general_text(n_documents: int, seed: int) -> list[str]:
    """``n_documents`` distinct paragraphs (3-6 sentences each), deterministic for ``seed``."""
    if n_documents <= 0:
        raise InputError(f"n_documents must be positive, got {n_documents}.", key="monotonic.sample.n_documents")
    r = random.Random(seed)
    docs: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(docs) < n_documents and attempts < 50 * n_documents:
        attempts += 1
        sentences = r.choice(_GENERATORS)(r)
        k = r.randint(3, len(sentences))
        keep = [sentences[0]] + sorted(r.sample(sentences[1:], k - 1), key=sentences.index)
        doc = " ".join(keep)
        if doc not in seen:
            seen.add(doc)
            docs.append(doc)
    return docs


@dataclass(frozen=True)
class SampleParams:
    """``monotonic.sample``: size and seed of the embedded general-text sample (stage ``mono_sample``)."""

    n_documents: int = 3000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_documents < 10:
            raise ValueError(f"n_documents: must be >= 10, got {self.n_documents}")


@dataclass(frozen=True)
class SplitParams:
    """``monotonic.data``: the corpus, its split fractions (train gets the rest), the training block size."""

    text: str = "data/monotonic/sample/general_text.txt"
    text_fields: tuple[str, ...] = ("text",)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    min_chars: int = 20
    block_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("valid_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                raise ValueError(f"{name}: must be in (0, 0.5), got {getattr(self, name)}")
        if self.block_size < 2:
            raise ValueError(f"block_size: must be >= 2 tokens, got {self.block_size}")
        if self.min_chars < 0:
            raise ValueError(f"min_chars: must be >= 0, got {self.min_chars}")


def split_texts(texts: Sequence[str], params: SplitParams, seed: int) -> dict[str, list[str]]:
    """Deduplicated, shuffled train/valid/test splits: no text occurs in two splits.

    Texts shorter than ``min_chars`` are dropped; the shuffle depends only on ``seed`` and the texts.
    """
    unique = sorted({t.strip() for t in texts if len(t.strip()) >= params.min_chars})
    if len(unique) < 10:
        raise InputError(
            f"the text corpus holds {len(unique)} distinct texts of at least {params.min_chars} characters; "
            "at least 10 are needed for train/valid/test splits.",
            path=params.text, hint="point monotonic.data.text at a larger corpus (one document per line).",
        )
    unique.sort(key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    n_valid = max(1, round(params.valid_fraction * len(unique)))
    n_test = max(1, round(params.test_fraction * len(unique)))
    splits = {"test": unique[:n_test], "valid": unique[n_test:n_test + n_valid], "train": unique[n_test + n_valid:]}
    logger.info("split %d texts: %s", len(unique), {k: len(v) for k, v in splits.items()})
    return splits


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every special / added token id (never used as an attack replacement)."""
    ids = set(tokenizer.all_special_ids)
    ids.update(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}))
    return sorted(ids)


def encode_fixed(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], n_tokens: int, limit: int, what: str
) -> list[list[int]]:
    """The first ``n_tokens`` token ids of up to ``limit`` texts that are long enough (no specials added).

    Equal lengths let attacks batch texts without padding. Raises :class:`InputError` when no text
    is long enough; logs a warning when fewer than ``limit`` are.
    """
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    long_enough = [ids[:n_tokens] for ids in encoded if len(ids) >= n_tokens]
    if not long_enough:
        raise InputError(
            f"no {what} text has the {n_tokens} tokens needed (of {len(encoded)} texts, the longest has "
            f"{max((len(i) for i in encoded), default=0)} tokens).",
            key="monotonic.attack", hint="use longer texts or shorter context/target lengths.",
        )
    if len(long_enough) < limit:
        logger.warning("only %d of the %d requested %s texts have %d tokens", len(long_enough), limit, what, n_tokens)
    return long_enough[:limit]


def read_split(path: str | Path) -> list[str]:
    """The texts of a split file written by the ``mono_split`` stage (JSONL rows with ``text``)."""
    return [row["text"] for row in read_jsonl(path, required={"text": str})]


def split_jsonl(texts: Sequence[str]) -> str:
    """JSONL text of a split (one ``{"text": ...}`` object per line)."""
    return "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
