"""Gadget-type labels: the 8 canonical classes, field extraction, normalisation, format checks.

Model outputs look like ``gadget_type: <T>; location: <L>; explanation: <E>``. Comparing two
models' gadget types needs a normaliser that maps surface variants ("Read-write gadgets",
"RW", "I/O & side effects") to one of 8 canonical classes, and says ``None`` when the text is
not a gadget type at all.

The upstream normaliser worked on substrings: it removed ``"gadget"`` before ``"gadgets"``
(so "gadgets" became "s") and deleted every ``"and"`` substring (mangling "command",
"handshake", "standard"). Here normalisation is word-level: the text is split into words,
filler words are dropped as whole words, the remaining key is looked up in an alias table
and otherwise fuzzily matched (difflib ratio and token Jaccard) against the canonical names.
:func:`normalize_legacy` keeps the upstream behaviour only to reproduce its numbers.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

__all__ = [
    "CANONICAL",
    "DISPLAY_NAMES",
    "ALIASES",
    "normalize_gadget_type",
    "normalize_legacy",
    "extract_gadget_type",
    "extract_fields",
    "format_ok_lenient",
    "format_ok_strict",
    "find_class_in_text",
    "strip_class_mentions",
    "format_output",
]

CANONICAL: tuple[str, ...] = (
    "READ_WRITE",
    "CONTROL_FLOW",
    "COMMUNICATION_BRIDGE",
    "SECURITY_PROCESSING",
    "TIMING_SYNCHRONIZATION",
    "ARITHMETIC_COMPUTATION",
    "COMPOSITION_CHAINING",
    "IO_SIDE_EFFECT",
)

#: How each class is written in gold outputs ("<name> gadget") and in upstream instructions.
DISPLAY_NAMES: dict[str, str] = {
    "READ_WRITE": "Read/Write",
    "CONTROL_FLOW": "Control-Flow",
    "COMMUNICATION_BRIDGE": "Communication-Bridge",
    "SECURITY_PROCESSING": "Security-Processing",
    "TIMING_SYNCHRONIZATION": "Timing/Synchronization",
    "ARITHMETIC_COMPUTATION": "Arithmetic/Computation",
    "COMPOSITION_CHAINING": "Composition/Chaining",
    "IO_SIDE_EFFECT": "I/O and Side-Effect",
}

#: Whole words dropped before matching (never substrings: "command" keeps its "and").
FILLER_WORDS = frozenset({"gadget", "gadgets", "the", "a", "an", "and", "of", "type", "class", "category"})

#: Normalised key -> canonical class. Keys are filler-free, space-joined lowercase words.
ALIASES: dict[str, str] = {
    "read write": "READ_WRITE", "rw": "READ_WRITE", "r w": "READ_WRITE", "memory read write": "READ_WRITE",
    "read write access": "READ_WRITE", "readwrite": "READ_WRITE", "data read write": "READ_WRITE",
    "control flow": "CONTROL_FLOW", "controlflow": "CONTROL_FLOW", "branch": "CONTROL_FLOW",
    "branching": "CONTROL_FLOW", "jump": "CONTROL_FLOW", "control transfer": "CONTROL_FLOW",
    "communication bridge": "COMMUNICATION_BRIDGE", "communication": "COMMUNICATION_BRIDGE",
    "comms bridge": "COMMUNICATION_BRIDGE", "network bridge": "COMMUNICATION_BRIDGE",
    "protocol bridge": "COMMUNICATION_BRIDGE", "communications bridge": "COMMUNICATION_BRIDGE",
    "security processing": "SECURITY_PROCESSING", "security": "SECURITY_PROCESSING",
    "authentication": "SECURITY_PROCESSING", "access control": "SECURITY_PROCESSING",
    "timing synchronization": "TIMING_SYNCHRONIZATION", "timing synchronisation": "TIMING_SYNCHRONIZATION",
    "timing": "TIMING_SYNCHRONIZATION", "synchronization": "TIMING_SYNCHRONIZATION",
    "timing sync": "TIMING_SYNCHRONIZATION", "timer": "TIMING_SYNCHRONIZATION",
    "arithmetic computation": "ARITHMETIC_COMPUTATION", "arithmetic": "ARITHMETIC_COMPUTATION",
    "computation": "ARITHMETIC_COMPUTATION", "math": "ARITHMETIC_COMPUTATION",
    "composition chaining": "COMPOSITION_CHAINING", "composition": "COMPOSITION_CHAINING",
    "chaining": "COMPOSITION_CHAINING", "chain": "COMPOSITION_CHAINING",
    "i o side effect": "IO_SIDE_EFFECT", "io side effect": "IO_SIDE_EFFECT", "i o side effects": "IO_SIDE_EFFECT",
    "io side effects": "IO_SIDE_EFFECT", "input output side effect": "IO_SIDE_EFFECT",
    "input output": "IO_SIDE_EFFECT", "side effect": "IO_SIDE_EFFECT", "i o": "IO_SIDE_EFFECT",
    "io": "IO_SIDE_EFFECT",
}

_FIELD_RE = {
    name: re.compile(rf"{name}\s*:\s*([^;\n]*)", re.IGNORECASE) for name in ("gadget_type", "location")
}
_EXPLANATION_RE = re.compile(r"explanation\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_STRICT_RE = re.compile(
    r"^\s*gadget_type:\s*[^;\n]*\S[^;\n]*;\s*location:\s*[^;\n]*\S[^;\n]*;\s*explanation:\s*\S.*$",
    re.IGNORECASE | re.DOTALL,
)


def _key(raw: str) -> str:
    """NFKC, lowercase, non-alphanumerics -> spaces, filler words dropped (whole words only)."""
    text = unicodedata.normalize("NFKC", raw).lower().replace("&", " and ")
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(w for w in words if w not in FILLER_WORDS)


def _similarity(a: str, b: str) -> float:
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    ta, tb = set(a.split()), set(b.split())
    jaccard = len(ta & tb) / len(ta | tb) if ta | tb else 0.0
    return max(ratio, jaccard)


def normalize_gadget_type(raw: str | None, threshold: float = 0.75) -> str | None:
    """Map a free-text gadget type to a canonical class, or ``None`` when it is not one.

    Exact alias hits win; otherwise the best fuzzy score over all alias keys must reach
    ``threshold`` (0.75 keeps "Command enable logic" or "Handshake" out of every class).
    """
    if raw is None:
        return None
    key = _key(raw)
    if not key:
        return None
    if key in ALIASES:
        return ALIASES[key]
    best, best_score = None, 0.0
    for alias in sorted(ALIASES):
        score = _similarity(key, alias)
        if score > best_score:
            best, best_score = ALIASES[alias], score
    return best if best_score >= threshold else None


def normalize_legacy(raw: str | None, strip_punctuation: bool = False) -> str:
    """The upstream string normaliser, bugs included (for reproducing its agreement numbers only).

    ``replace("gadget", "")`` runs before ``replace("gadgets", "")`` so "gadgets" leaves an "s",
    and ``replace("and", "")`` deletes the substring inside words ("command" -> "comm"). The
    upstream code drops only whitespace, ``-``, ``_`` and ``/``; the write-up says it removes
    "spaces/hyphens/punctuation": ``strip_punctuation`` drops every non-alphanumeric character.
    """
    if not raw:
        return ""
    s = raw.lower().replace("gadget", "").replace("gadgets", "")
    s = re.sub(r"[^0-9a-z]+" if strip_punctuation else r"[\s\-_/]+", "", s)
    return s.replace("and", "")


def extract_gadget_type(text: str) -> str | None:
    """The raw ``gadget_type:`` value (first occurrence, up to ``;`` or newline), or ``None``."""
    match = _FIELD_RE["gadget_type"].search(text or "")
    if not match or not match.group(1).strip():
        return None
    return match.group(1).strip()


def extract_fields(text: str) -> dict[str, str | None]:
    """``gadget_type``, ``location`` and ``explanation`` values of an output (``None`` if absent)."""
    text = text or ""
    fields: dict[str, str | None] = {"gadget_type": extract_gadget_type(text)}
    loc = _FIELD_RE["location"].search(text)
    fields["location"] = loc.group(1).strip() or None if loc else None
    exp = _EXPLANATION_RE.search(text)
    fields["explanation"] = exp.group(1).strip() or None if exp else None
    return fields


def format_ok_lenient(text: str) -> bool:
    """Upstream check: the three keys appear somewhere (case-insensitive)."""
    low = (text or "").lower()
    return all(k in low for k in ("gadget_type:", "location:", "explanation:"))


def format_ok_strict(text: str) -> bool:
    """Exactly ``gadget_type: T; location: L; explanation: E``, each field non-empty and present once."""
    text = text or ""
    low = text.lower()
    if any(low.count(k) != 1 for k in ("gadget_type:", "location:", "explanation:")):
        return False
    return bool(_STRICT_RE.match(text))


def _class_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Regexes matching each class's display name with any of ``/ - _ space`` between words."""
    patterns = []
    for label, name in DISPLAY_NAMES.items():
        words = [w for w in re.split(r"[\s/\-_]+", name) if w]
        body = r"[\s/\-_]*".join(re.escape(w) for w in words)
        patterns.append((label, re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])", re.IGNORECASE)))
    # Longest names first so "I/O and Side-Effect" is matched before a shorter overlap.
    return sorted(patterns, key=lambda p: -len(DISPLAY_NAMES[p[0]]))


_CLASS_PATTERNS = _class_patterns()


def find_class_in_text(text: str) -> str | None:
    """The canonical class whose display name appears in ``text`` (first by position), else ``None``.

    This is the copy-from-instruction baseline: it predicts whatever class the prompt names.
    """
    hits = [(m.start(), label) for label, pat in _CLASS_PATTERNS if (m := pat.search(text or ""))]
    return min(hits)[1] if hits else None


def strip_class_mentions(text: str) -> str:
    """Remove class names from an instruction so the label cannot be copied from the prompt."""
    out = text
    for _, pat in _CLASS_PATTERNS:
        out = pat.sub("", out)
    return re.sub(r"[ \t]{2,}", " ", out).replace(" ,", ",").strip()


def format_output(label: str, location: str, explanation: str, surface: str | None = None) -> str:
    """The gold output string for a canonical ``label`` (``surface`` overrides the display name)."""
    name = surface or f"{DISPLAY_NAMES[label]} gadget"
    return f"gadget_type: {name}; location: {location}; explanation: {explanation}"
