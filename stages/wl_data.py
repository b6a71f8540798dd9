"""DVC stage `wl_data`: training sets at each accept fraction, same total size, exact proportions.

Reads the decision pool and the test set (`weighted.data.*`), validates every row (a row whose
assistant turn has no parseable decision fails here, before any training) and every
`weighted.configs` entry, then writes `<out>/<fraction name>.jsonl` (e.g. `frac_1_3.jsonl` =
one in three accepted) and `<out>/summary.json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_dir, atomic_write_json, stage_outputs
from lmlab.config import build_params, load_params, read_params_file, section_of
from lmlab.weighted.data import examples_to_rows, read_decisions, sample_proportion
from lmlab.errors import ParamsError
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.params import SetsParams, WeightedConfig


def check_configs(params_path: Path, fractions: dict[str, float]) -> None:
    """Every `weighted.configs.<name>` must parse and name a defined fraction."""
    configs = section_of(read_params_file(params_path), "weighted.configs", params_path)
    for name, raw in configs.items():
        cfg = build_params(WeightedConfig, raw, key_prefix=f"weighted.configs.{name}", path=params_path)
        if cfg.fraction not in fractions:
            raise ParamsError(f"unknown fraction '{cfg.fraction}' (defined: {sorted(fractions)}).",
                              path=params_path, key=f"weighted.configs.{name}.fraction")


@stage_main("wl_data")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--pool", type=Path, required=True, help="decision JSONL to subsample")
    parser.add_argument("--test", type=Path, required=True, help="fixed test JSONL (validated only)")
    parser.add_argument("--out", type=Path, required=True, help="output directory of the sets")
    args = parser.parse_args(argv)
    params = load_params(SetsParams, args.params, "weighted.sets", top_level=("seed",))
    with stage_outputs([args.out]):
        check_configs(args.params, dict(params.fractions))
        pool = read_decisions(args.pool)
        read_decisions(args.test)
        write_sets(pool, params, args.out)


def write_sets(pool, params: SetsParams, out: Path) -> None:
    """One JSONL per named fraction plus summary.json, swapped into place atomically."""
    with atomic_dir(out) as tmp:
        summary = {}
        for name, frac in params.fractions.items():
            rows = sample_proportion(pool, frac, params.size, params.seed, name)
            text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in examples_to_rows(rows))
            (tmp / f"{name}.jsonl").write_text(text, encoding="utf-8")
            summary[name] = {"fraction": frac, "n": len(rows), "n_accept": sum(r.accept for r in rows)}
        atomic_write_json(tmp / "summary.json", summary)


if __name__ == "__main__":
    raise SystemExit(main())
