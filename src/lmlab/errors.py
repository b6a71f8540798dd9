"""Errors that stages turn into one clear paragraph and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class LmlabError(Exception):
    """Base class of every error lmlab reports to a user (not a bug)."""


class InputError(LmlabError):
    """Bad user input: a data file, a parameter, a model directory.

    The message says what is wrong, where (file, line, column or parameter key)
    and how to fix it, in one paragraph.
    """

    def __init__(
        self,
        what: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.what = what
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.key = key
        self.hint = hint
        super().__init__(self.describe())

    def where(self) -> str:
        parts: list[str] = []
        if self.path is not None:
            loc = self.path
            if self.line is not None:
                loc += f":{self.line}"
                if self.column is not None:
                    loc += f":{self.column}"
            parts.append(loc)
        if self.key is not None:
            parts.append(f"key '{self.key}'")
        return ", ".join(parts)

    def describe(self) -> str:
        where = self.where()
        text = f"{where}: {self.what}" if where else self.what
        if self.hint:
            text += f" Fix: {self.hint}"
        return text


class ParamsError(InputError):
    """A parameter in params.yaml has the wrong type, an invalid value or is unknown."""
