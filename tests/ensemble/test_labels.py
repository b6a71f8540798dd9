"""Gadget-type extraction, normalisation (incl. the upstream bugs), format checks, class stripping."""

from __future__ import annotations

import pytest

from lmlab.ensemble.labels import (
    CANONICAL,
    DISPLAY_NAMES,
    extract_fields,
    extract_gadget_type,
    find_class_in_text,
    format_ok_lenient,
    format_ok_strict,
    format_output,
    normalize_gadget_type,
    normalize_legacy,
    strip_class_mentions,
)


@pytest.mark.parametrize("label", CANONICAL)
def test_display_names_and_plural_map_to_their_class(label):
    name = DISPLAY_NAMES[label]
    assert normalize_gadget_type(f"{name} gadget") == label
    assert normalize_gadget_type(f"{name} gadgets") == label
    assert normalize_gadget_type(name.upper()) == label


@pytest.mark.parametrize(("raw", "expected"), [
    ("Read-write gadgets", "READ_WRITE"),
    ("RW", "READ_WRITE"),
    ("I/O & side effects", "IO_SIDE_EFFECT"),
    ("IO side-effect gadget", "IO_SIDE_EFFECT"),
    ("Timing/Synchronisation gadget", "TIMING_SYNCHRONIZATION"),
    ("Compositon/Chaining gadget", "COMPOSITION_CHAINING"),  # typo -> fuzzy match
    ("Communication bridge", "COMMUNICATION_BRIDGE"),
])
def test_variants_aliases_and_typos(raw, expected):
    assert normalize_gadget_type(raw) == expected


@pytest.mark.parametrize("raw", ["Command enable logic", "Command gadget", "Handshake", "Standard", "foo bar",
                                 "", "   ", None, "gadget"])
def test_non_classes_are_none(raw):
    assert normalize_gadget_type(raw) is None


def test_upstream_bug_and_inside_command_is_not_repeated():
    # Upstream deleted the substring "and": "Command" became "comm", "Handshake" became "hshake".
    assert normalize_legacy("Command gadget") == "comm"
    assert normalize_legacy("Handshake") == "hshake"
    # Word-level normalisation keeps "command" intact, so it does not turn into something else,
    # while the whole word "and" is still dropped.
    assert normalize_gadget_type("Command gadget") is None
    assert normalize_gadget_type("I/O and Side-Effect") == normalize_gadget_type("I/O Side-Effect") == "IO_SIDE_EFFECT"


def test_upstream_bug_gadgets_to_s_is_not_repeated():
    # Upstream removed "gadget" before "gadgets", leaving a stray "s".
    assert normalize_legacy("Read/Write gadgets") == "readwrites"
    assert normalize_legacy("Read/Write gadgets") != normalize_legacy("Read/Write gadget")
    assert normalize_gadget_type("Read/Write gadgets") == normalize_gadget_type("Read/Write gadget") == "READ_WRITE"


def test_extract_fields():
    out = "gadget_type: Control-Flow gadget; location: Section 3.1 Jumps; explanation: JMP skips rungs; really."
    assert extract_gadget_type(out) == "Control-Flow gadget"
    fields = extract_fields(out)
    assert fields == {"gadget_type": "Control-Flow gadget", "location": "Section 3.1 Jumps",
                      "explanation": "JMP skips rungs; really."}
    assert extract_gadget_type("no fields here") is None
    assert extract_gadget_type("gadget_type: ; location: x") is None
    assert extract_fields("GADGET_TYPE: RW\nmore")["gadget_type"] == "RW"


def test_format_checks_lenient_vs_strict():
    good = format_output("READ_WRITE", "Section 1.1 Memory", "MOV copies a value.")
    assert format_ok_lenient(good) and format_ok_strict(good)
    shuffled = "location: a; gadget_type: Read/Write gadget; explanation: b"
    assert format_ok_lenient(shuffled) and not format_ok_strict(shuffled)
    empty_field = "gadget_type: Read/Write gadget; location: ; explanation: b"
    assert format_ok_lenient(empty_field) and not format_ok_strict(empty_field)
    repeated = good + " gadget_type: Control-Flow gadget"
    assert format_ok_lenient(repeated) and not format_ok_strict(repeated)
    missing = "gadget_type: Read/Write gadget; explanation: b"
    assert not format_ok_lenient(missing) and not format_ok_strict(missing)
    assert format_ok_strict("GADGET_TYPE: x; LOCATION: y; EXPLANATION: z")


def test_strip_and_find_class_in_instruction():
    text = "Identify weird machine I/O AND SIDE-EFFECT gadgets in the following excerpt."
    assert find_class_in_text(text) == "IO_SIDE_EFFECT"
    stripped = strip_class_mentions(text)
    assert stripped == "Identify weird machine gadgets in the following excerpt."
    assert find_class_in_text(stripped) is None
    for label, name in DISPLAY_NAMES.items():
        assert find_class_in_text(f"Find {name.upper()} gadgets") == label
        assert find_class_in_text(strip_class_mentions(f"Find {name.upper()} gadgets")) is None
    # Words that merely contain a class word are left alone.
    assert strip_class_mentions("Check the readwriter and timings") == "Check the readwriter and timings"
