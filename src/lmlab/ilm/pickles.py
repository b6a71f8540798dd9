"""Pickle I/O for masked ILM examples: one restricted unpickler, streaming writers.

Every pickle load in lmlab goes through :func:`load_pickle` / :func:`loads_pickle`. The
unpickler resolves no global except builtin containers/scalars and the reference's
``ilm.mask.hierarchical.MaskHierarchicalType`` (mapped to our plain ints, see
:class:`lmlab.ilm.format.MaskType`); anything else (``os.system``, ``builtins.eval``,
``subprocess.Popen`` ...) raises :class:`~lmlab.errors.InputError` before it can run.

Masked-example pickles hold ``list[tuple[str, list[list[tuple[int, int, int]]]]]``:
``(document, examples)``, an example being spans ``(mask_type, char_offset, char_len)``.
:class:`ExamplePickleWriter` streams that list to disk in chunks so a 578k-document split is
never held in memory: it writes ``PROTO 3, EMPTY_LIST``, then for every chunk the append
opcodes that :func:`encode_items` takes from the C pickler (protocol 3, memo off), then
``STOP``. The file is one ordinary pickle of one list. :func:`export_reference_pickle`
writes the reference's own format, where each span type is the enum
``ilm.mask.hierarchical.MaskHierarchicalType(<int>)`` (``STACK_GLOBAL`` + ``REDUCE``), so
the reference tooling (``train_ilm.py``) can read our examples.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from lmlab.errors import InputError
from lmlab.ilm.format import MaskType

__all__ = [
    "REFERENCE_MODULE",
    "REFERENCE_CLASS",
    "RestrictedUnpickler",
    "load_pickle",
    "loads_pickle",
    "encode_items",
    "ExamplePickleWriter",
    "export_reference_pickle",
    "write_examples_pickle",
]

REFERENCE_MODULE = "ilm.mask.hierarchical"
REFERENCE_CLASS = "MaskHierarchicalType"

Item = tuple[str, list[list[tuple[int, int, int]]]]

# Builtins a pickle of plain data may need (protocol <= 2 pickles sets, bytes, ... by name).
_SAFE_BUILTINS: dict[str, Any] = {
    "set": set,
    "frozenset": frozenset,
    "bytearray": bytearray,
    "complex": complex,
    "slice": slice,
    "range": range,
}


def _reference_mask_type(value: int) -> int:
    """``MaskHierarchicalType(value)`` as our plain int."""
    if type(value) is not int or value not in MaskType._value2member_map_:
        raise pickle.UnpicklingError(f"{REFERENCE_MODULE}.{REFERENCE_CLASS}({value!r}) is not a known mask type")
    return value


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """How protocol <= 2 pickles rebuild ``bytes``: ``_codecs.encode(str, 'latin1')``."""
    if type(text) is not str or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin1/utf-8 text only")
    return text.encode(encoding)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals listed in the module docstring."""

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == REFERENCE_MODULE and name == REFERENCE_CLASS:
            return _reference_mask_type
        if module == "_codecs" and name == "encode":
            return _codecs_encode
        raise pickle.UnpicklingError(
            f"refused global '{module}.{name}': lmlab pickles may reference builtin containers/scalars "
            f"and {REFERENCE_MODULE}.{REFERENCE_CLASS} only"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id: lmlab pickles hold plain data only")


def loads_pickle(data: bytes, *, source: str | Path | None = None) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; bad data raises :class:`InputError`."""
    return _load(io.BytesIO(data), source)


def load_pickle(path: str | Path) -> Any:
    """Unpickle the file at ``path`` with :class:`RestrictedUnpickler`."""
    path = Path(path)
    if not path.is_file():
        raise InputError("pickle file not found.", path=path, hint="run the stage that writes it (e.g. dvc repro).")
    with path.open("rb") as handle:
        return _load(handle, path)


def _load(handle: BinaryIO, source: str | Path | None) -> Any:
    try:
        return RestrictedUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, OverflowError, MemoryError) as exc:
        raise InputError(
            f"not a safe lmlab pickle: {exc}",
            path=source,
            hint="only pickles of plain data (lists, tuples, str, int, ...) and reference ILM mask "
            "pickles can be read; never load pickles from untrusted sources with plain pickle.",
        ) from exc


# -- writing ----------------------------------------------------------------

_HEADER = pickle.PROTO + bytes([3]) + pickle.EMPTY_LIST


def encode_items(items: Sequence[Any]) -> bytes:
    """Opcodes appending ``items`` to the list on the unpickler's stack (C pickler, memo off)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=3)
    pickler.fast = True  # no memo: each chunk is self-contained, nothing kept alive
    pickler.dump(list(items))
    data = buffer.getvalue()
    if not (data.startswith(_HEADER) and data.endswith(pickle.STOP)):
        raise RuntimeError("unexpected pickle layout from the C pickler")
    return data[len(_HEADER) : -1]


class ExamplePickleWriter:
    """Stream a pickled list to ``handle``: ``write_encoded(encode_items(chunk))`` per chunk."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._handle.write(_HEADER)
        self.items = 0

    def write(self, items: Sequence[Any]) -> None:
        self.write_encoded(encode_items(items), len(items))

    def write_encoded(self, body: bytes, n_items: int) -> None:
        self._handle.write(body)
        self.items += n_items

    def close(self) -> None:
        self._handle.write(pickle.STOP)


def write_examples_pickle(path: str | Path, items: Iterable[Item], chunk: int = 1024) -> int:
    """Write ``items`` (any iterable) to ``path`` as one pickled list; return the count."""
    from lmlab.artifacts import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        writer = ExamplePickleWriter(handle)
        batch: list[Item] = []
        for item in items:
            batch.append(item)
            if len(batch) >= chunk:
                writer.write(batch)
                batch = []
        writer.write(batch)
        writer.close()
    return writer.items


# -- the reference format ------------------------------------------------------


def _ref_str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) < 256:
        return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw
    if len(raw) < 2**32:
        return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw
    return pickle.BINUNICODE8 + struct.pack("<Q", len(raw)) + raw


def _ref_int(value: int) -> bytes:
    if 0 <= value < 256:
        return pickle.BININT1 + bytes([value])
    if 0 <= value < 65536:
        return pickle.BININT2 + struct.pack("<H", value)
    if -(2**31) <= value < 2**31:
        return pickle.BININT + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


class _ReferenceEncoder:
    """Protocol-4 opcodes of the reference's ``(doc, [[(MaskHierarchicalType, off, len)]])``.

    The class is pushed once (``STACK_GLOBAL``) and each enum member built once
    (``REDUCE`` of its int) and memoized, as ``pickle.dump`` of the enum would do.
    """

    def __init__(self) -> None:
        self._memo: dict[object, int] = {}

    def _memoize(self, key: object) -> bytes:
        self._memo[key] = len(self._memo)
        return pickle.MEMOIZE

    def _get(self, key: object) -> bytes:
        index = self._memo[key]
        return pickle.BINGET + bytes([index]) if index < 256 else pickle.LONG_BINGET + struct.pack("<I", index)

    def mask_type(self, value: int) -> bytes:
        value = int(MaskType(value))
        if value in self._memo:
            return self._get(value)
        if "class" in self._memo:
            out = self._get("class")
        else:
            out = _ref_str(REFERENCE_MODULE) + _ref_str(REFERENCE_CLASS) + pickle.STACK_GLOBAL + self._memoize("class")
        return out + _ref_int(value) + pickle.TUPLE1 + pickle.REDUCE + self._memoize(value)

    def item(self, item: Item) -> bytes:
        doc, examples = item
        parts = [_ref_str(doc), pickle.EMPTY_LIST]
        if examples:
            parts.append(pickle.MARK)
            for example in examples:
                parts.append(pickle.EMPTY_LIST)
                if example:
                    parts.append(pickle.MARK)
                    for mask_type, offset, length in example:
                        parts += (self.mask_type(mask_type), _ref_int(offset), _ref_int(length), pickle.TUPLE3)
                    parts.append(pickle.APPENDS)
            parts.append(pickle.APPENDS)
        parts.append(pickle.TUPLE2)
        return b"".join(parts)


def export_reference_pickle(items: Iterable[Item], path: str | Path, chunk: int = 1000) -> int:
    """Write ``items`` in the reference's pickle format (protocol 4); return the count."""
    from lmlab.artifacts import atomic_path

    encoder = _ReferenceEncoder()
    count = 0
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        handle.write(pickle.PROTO + bytes([4]) + pickle.EMPTY_LIST)
        batch: list[bytes] = []
        for item in items:
            batch.append(encoder.item(item))
            count += 1
            if len(batch) >= chunk:
                handle.write(pickle.MARK + b"".join(batch) + pickle.APPENDS)
                batch = []
        if batch:
            handle.write(pickle.MARK + b"".join(batch) + pickle.APPENDS)
        handle.write(pickle.STOP)
    return count
