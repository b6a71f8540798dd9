"""Restricted unpickler, streamed example pickles and the reference ILM pickle format."""

from __future__ import annotations

import enum
import io
import os
import pickle
import pickletools
import sys
import types
from pathlib import Path

import pytest

from lmlab.errors import InputError
from lmlab.ilm.pickles import (
    ExamplePickleWriter,
    export_reference_pickle,
    load_pickle,
    loads_pickle,
    write_examples_pickle,
)

ITEMS = [
    ("She ate cereal for breakfast.", [[(4, 8, 6)], [], [(2, 0, 29)], [(3, 0, 7), (4, 8, 6), (4, 28, 1)]]),
    ("", []),
    ("Olá, São Paulo! " * 40, [[(0, 0, 640)], [(3, 300, 70000), (1, 2**31, 2**40)]]),
    ("x", [[(4, 0, 1)]]),
]


def _globals(data: bytes) -> list[str]:
    """Globals a pickle references (GLOBAL, or the two strings before STACK_GLOBAL)."""
    found, strings = [], []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "GLOBAL":
            found.append(arg.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL":
            found.append(".".join(strings[-2:]))
    return found


@pytest.fixture()
def reference_enum(monkeypatch: pytest.MonkeyPatch) -> type[enum.Enum]:
    """An importable ilm.mask.hierarchical.MaskHierarchicalType, as the reference tooling has."""

    class MaskHierarchicalType(enum.Enum):
        DOCUMENT = 0
        PARAGRAPH = 1
        SENTENCE = 2
        NGRAM = 3
        WORD = 4

    module = types.ModuleType("ilm.mask.hierarchical")
    MaskHierarchicalType.__module__ = module.__name__
    MaskHierarchicalType.__qualname__ = "MaskHierarchicalType"
    module.MaskHierarchicalType = MaskHierarchicalType
    for name in ("ilm", "ilm.mask"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "ilm.mask.hierarchical", module)
    return MaskHierarchicalType


def test_our_pickle_round_trip_streams_builtins_only(tmp_path: Path) -> None:
    path = tmp_path / "ex.pkl"
    assert write_examples_pickle(path, iter(ITEMS), chunk=3) == len(ITEMS)
    assert load_pickle(path) == ITEMS
    data = path.read_bytes()
    assert _globals(data) == []
    assert pickle.loads(data) == ITEMS  # an ordinary pickle: our own bytes, just written above

    buffer = io.BytesIO()
    writer = ExamplePickleWriter(buffer)
    for chunk in ([], ITEMS[:1], ITEMS[1:]):  # empty and single-item chunks too
        writer.write(chunk)
    writer.close()
    assert loads_pickle(buffer.getvalue()) == ITEMS and writer.items == len(ITEMS)


def test_reference_export_round_trip(tmp_path: Path, reference_enum: type[enum.Enum]) -> None:
    path = tmp_path / "train.pkl"
    assert export_reference_pickle(ITEMS, path, chunk=2) == len(ITEMS)
    data = path.read_bytes()
    assert set(_globals(data)) == {"ilm.mask.hierarchical.MaskHierarchicalType"}
    assert "STACK_GLOBAL" in {op.name for op, _, _ in pickletools.genops(data)}
    assert load_pickle(path) == ITEMS  # our unpickler maps the enum to plain ints
    as_reference = pickle.loads(data)  # what the reference tooling sees (the enum is importable here)
    assert as_reference[0][1][0] == [(reference_enum.WORD, 8, 6)]
    assert [[[(t.value, o, n) for t, o, n in ex] for ex in exs] for _, exs in as_reference] == [
        [[tuple(s) for s in ex] for ex in exs] for _, exs in ITEMS
    ]


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_reading_pickles_written_by_the_reference(reference_enum: type[enum.Enum], protocol: int) -> None:
    t = reference_enum
    masked = [("I am agree.", [[(t.WORD, 2, 2), (t.NGRAM, 5, 5)], []]), ("Hi.", [[(t.DOCUMENT, 0, 3)]])]
    data = pickle.dumps(masked, protocol=protocol)
    assert loads_pickle(data) == [("I am agree.", [[(4, 2, 2), (3, 5, 5)], []]), ("Hi.", [[(0, 0, 3)]])]
    assert loads_pickle(pickle.dumps({50257: "<|startofinfill|>", "s": {1, 2}, "b": b"\x00"}, protocol)) == {
        50257: "<|startofinfill|>", "s": {1, 2}, "b": b"\x00"
    }


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


def test_malicious_pickles_are_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for protocol in (0, 2, 4):
        data = pickle.dumps([("doc", [[(4, 0, 3)]]), _Payload(marker)], protocol=protocol)
        with pytest.raises(InputError, match="refused global '(posix|os|nt).system'"):
            loads_pickle(data)
        path = tmp_path / f"evil{protocol}.pkl"
        path.write_bytes(data)
        with pytest.raises(InputError, match=r"evil\d\.pkl"):
            load_pickle(path)
    with pytest.raises(InputError, match="refused global 'builtins.eval'"):
        loads_pickle(pickle.dumps(_EvalPayload()))
    assert not marker.exists()


def test_bad_enum_values_and_broken_files(tmp_path: Path, reference_enum: type[enum.Enum]) -> None:
    bad = pickle.dumps(reference_enum.WORD).replace(b"K\x04", b"K\x09")
    with pytest.raises(InputError, match="not a known mask type"):
        loads_pickle(bad)
    good = pickle.dumps(ITEMS)
    with pytest.raises(InputError):
        loads_pickle(good[: len(good) // 2])
    with pytest.raises(InputError, match="not found"):
        load_pickle(tmp_path / "missing.pkl")
