"""Benchmark: what the pinned CPU numerics (lmlab.numerics) cost, side by side with fast numerics.

Each round runs the same work in fresh processes, once pinned (the default) and once with
``LMLAB_FAST_NUMERICS=1``, alternating so machine noise hits both alike; the table gives medians
and the pinned/fast ratio. Workloads, all from the pipeline's model sizes:

- ``tiny train``: the weighted family's model (1-layer GPT-2, d=128) for 60 AdamW steps of 16x96
  tokens (the wl_train step);
- ``ilm train``: the ILM model (2-layer d=64 GPT-2, 2048 BPE) for 60 steps of 16x256;
- ``fwd+bwd 4x256``: one forward+backward of a 4-layer d=256 GPT-2 on 16x128 tokens (a bigger
  model than the embedded default: how the cost grows with matrix size).

    python bench/bench_numerics.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKLOADS = {
    "tiny train (wl_train model, 60 steps)": {"layers": 1, "width": 128, "vocab": 1024, "batch": 16, "length": 96,
                                              "steps": 60},
    "ilm train (ilm_train model, 60 steps)": {"layers": 2, "width": 64, "vocab": 2048, "batch": 16, "length": 256,
                                              "steps": 60},
    "fwd+bwd 4x256 (bigger model, 5 passes)": {"layers": 4, "width": 256, "vocab": 4096, "batch": 16, "length": 128,
                                               "steps": 5},
}
MODES = {"pinned": {}, "fast": {"LMLAB_FAST_NUMERICS": "1"}}


def child(spec: dict[str, int]) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    import lmlab  # noqa: F401  (pins the numerics unless LMLAB_FAST_NUMERICS=1)
    from lmlab.numerics import check_pin

    state = check_pin()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=spec["vocab"], n_positions=spec["length"], n_embd=spec["width"],
                        n_layer=spec["layers"], n_head=4, n_inner=4 * spec["width"])
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = torch.randint(0, spec["vocab"], (spec["batch"], spec["length"]))
    start = time.perf_counter()
    for _ in range(spec["steps"]):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    print(json.dumps({"seconds": time.perf_counter() - start, "state": state.describe()}))


def run(spec: dict[str, int], mode_env: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LMLAB_FAST_NUMERICS"}
    env.update(mode_env)
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 5")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    rounds = 3 if args.quick else 5
    times: dict[tuple[str, str], list[float]] = {}
    states: dict[str, str] = {}
    for _ in range(rounds):
        for name, spec in WORKLOADS.items():
            for mode, env in MODES.items():
                result = run(spec, env)
                times.setdefault((name, mode), []).append(result["seconds"])
                states[mode] = result["state"]
    for mode, state in states.items():
        print(f"{mode}: {state}")
    print(f"\n| workload | pinned s (median of {rounds}) | fast s | pinned / fast |")
    print("|---|---|---|---|")
    for name in WORKLOADS:
        pinned, fast = (statistics.median(times[(name, mode)]) for mode in MODES)
        print(f"| {name} | {pinned:.2f} | {fast:.2f} | {pinned / fast:.2f}x |")


if __name__ == "__main__":
    main()
