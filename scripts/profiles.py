"""Apply a write-up profile (profiles/<name>.yaml) as one DVC experiment, or check or show it.

  scripts/lab profile --list                    the profiles and the write-up each follows
  scripts/lab profile NAME --show               the -S overrides it applies
  scripts/lab profile NAME --check              every key exists and type-checks as the stages load it
  scripts/lab profile NAME [dvc exp run args]   dvc exp run -n profile-NAME -S ... [args], e.g. --queue
  scripts/lab profile A+B ...                   several profiles as one experiment (B wins on shared keys)

The check loads params.yaml with the profile applied through the same strict typed loaders the
stages call (found by reading stages/*.py; lmlab.params_check, also run by the check_params stage), so a value of the wrong type fails here, naming the
key, instead of hours into a cluster job.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmlab.config import read_params_file  # noqa: E402
from lmlab.errors import LmlabError, ParamsError  # noqa: E402
from lmlab.params_check import LoaderCall, check_params_file  # noqa: E402
from lmlab.params_check import stage_loader_calls as _stage_loader_calls  # noqa: E402
from lmlab.profiles import (  # noqa: E402
    apply_overlay,
    load_profile,
    overlay_keys,
    overlay_position,
    set_param_args,
)

PROFILES = ROOT / "profiles"


def stage_loader_calls(stages_dir: Path = ROOT / "stages", dvc_yaml: Path = ROOT / "dvc.yaml") -> list[LoaderCall]:
    """Every static strict params load of the stage scripts (see :mod:`lmlab.params_check`)."""
    return _stage_loader_calls(stages_dir, dvc_yaml)


def profile_path(name: str, profiles: Path = PROFILES) -> Path:
    path = profiles / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in profiles.glob("*.yaml")))
        raise ParamsError(f"no such profile (profiles: {known}).", path=path)
    return path


def profile_params(path: Path, params_file: Path = ROOT / "params.yaml") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(keys, meta)``: the profile's dotted overrides (each checked to exist) and its ``profile:`` block."""
    overlay, meta = load_profile(path)
    return overlay_keys(overlay, read_params_file(params_file), profile_path=_shown(path)), meta


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def combined_params(paths: list[Path], params_file: Path = ROOT / "params.yaml") -> dict[str, Any]:
    """The overrides of several profiles applied in order (a later profile wins on a shared key)."""
    keys: dict[str, Any] = {}
    for path in paths:
        keys.update(profile_params(path, params_file)[0])
    return keys


def check_profile(path: Path | list[Path], params_file: Path = ROOT / "params.yaml",
                  calls: list[LoaderCall] | None = None) -> int:
    """Type-check profiles: params.yaml with their overrides through every stage's strict loader.

    An error in an overridden value names the profile's file, line and column.
    """
    import yaml

    paths = path if isinstance(path, list) else [path]
    keys = combined_params(paths, params_file)
    applied = apply_overlay(read_params_file(params_file), keys)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "params.yaml"
        target.write_text(yaml.safe_dump(applied, sort_keys=False))
        try:
            return check_params_file(target, stage_loader_calls() if calls is None else calls)
        except ParamsError as exc:
            culprit = next((k for k in keys if exc.key and (exc.key == k or exc.key.startswith(k + "."))), None)
            owner = next((p for p in reversed(paths) if culprit in profile_params(p, params_file)[0]), None)
            if owner is None:
                raise
            line, col = overlay_position(load_profile(owner)[0], culprit)
            raise ParamsError(exc.what, path=_shown(owner), line=line, column=col, key=exc.key,
                              hint=exc.hint) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the profiles")
    parser.add_argument("--show", action="store_true", help="print the -S overrides")
    parser.add_argument("--check", action="store_true", help="check every key and value against the stages")
    args, dvc_args = parser.parse_known_args(argv)
    if args.list or not args.name:
        for path in sorted(PROFILES.glob("*.yaml")):
            _, meta = load_profile(path)
            print(f"{path.stem:12s} write-up {meta.get('writeup', '?')}: {meta.get('description', '')}")
        return 0
    try:
        paths = [profile_path(name) for name in args.name.split("+")]
        if args.check:
            loads = check_profile(paths)
            print(f"profile {args.name}: every key exists and {loads} stage loads type-check")
            return 0
        keys = combined_params(paths)
    except LmlabError as exc:
        print(f"profile {args.name}: {exc}", file=sys.stderr)
        return 2
    overrides = set_param_args(keys)
    if args.show:
        print(" ".join(f"-S '{value}'" for value in overrides[1::2]))
        return 0
    command = ["dvc", "exp", "run", "-n", f"profile-{args.name.replace('+', '-')}", *overrides, *dvc_args]
    print("profile:", " ".join(command), flush=True)
    os.execvp(command[0], command)
    return 0  # unreachable


if __name__ == "__main__":
    raise SystemExit(main())
