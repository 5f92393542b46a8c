"""Benchmark: time to build the toy world and pretrain one toy CLIP, against the budgets.

Budgets (issue "Foundation"): world + one toy CLIP <= 300 s on 2 CPU cores; the `smoke` size <= 30 s.
Runs in a fresh temporary cache so nothing is reused. Usage:
    python benchmarks/toy_world.py [--sizes smoke toy] [--variant clip-like-gap]
"""
import argparse
import tempfile
import time

import torch

from lcmc_core.images import toyclip, toyworld

BUDGET_S = {"smoke": 30.0, "toy": 300.0}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["smoke", "toy"], choices=sorted(toyclip.SIZES))
    parser.add_argument("--variant", default="clip-like-gap", choices=sorted(toyclip.VARIANTS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        split = toyworld.render_split("test", 2000, seed=123, cache=cache)
        dt = time.perf_counter() - t0
        print(f"render: {len(split.images)} scenes in {dt:.2f}s = {len(split.images) / dt:.0f} images/s")
        for size in args.sizes:
            spec = toyclip.toy_clip_specs(size, [args.variant])[0]
            t0 = time.perf_counter()
            toyclip.pretrain(spec, cache, progress=False)
            total = time.perf_counter() - t0
            log = toyclip.training_log(spec, cache)
            pairs = spec.epochs * (spec.n_pretrain // spec.batch_size) * spec.batch_size
            print(f"{size}: world {log['seconds_world']:.1f}s + pretrain {log['seconds_train']:.1f}s "
                  f"({pairs / log['seconds_train']:.0f} pairs/s) = {total:.1f}s total; "
                  f"budget {BUDGET_S[size]:.0f}s, ratio {total / BUDGET_S[size]:.2f}")


if __name__ == "__main__":
    main()
