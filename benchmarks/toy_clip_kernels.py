"""Check: does this CPU retrain the committed clip-like-gap toy CLIP bit for bit?

Trains the toy profile's ``clip-like-gap`` toy CLIP (seed 0, 368 steps, ~3 minutes on 2 cores) into a
fresh temporary cache and prints the CPU, torch's CPU kernels and the final logit scale beside the
committed one (``results/toy/tables/toy_clip_metrics.json``). Equal values mean this CPU reproduces
the committed toy CLIPs (and so every toy number); see ``lcmc_core/harness/verify.py`` for the values
measured on other CPUs. To see whether capping the instruction set changes the outcome, run it as
``ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/toy_clip_kernels.py``.
Run it alone: another torch job on the machine does not change the result, but makes it slow.
"""
import json
import os
import tempfile

import torch

from lcmc_core.harness.provenance import system_info
from lcmc_core.images import toyclip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    info = system_info()
    print(f"CPU {info.get('cpu_model')!r}, torch kernels {torch.backends.cpu.get_cpu_capability()}", flush=True)
    spec = toyclip.toy_clip_specs("toy", variants=["clip-like-gap"], seed=0)[0]
    with tempfile.TemporaryDirectory(prefix="lcmc-kernels-") as cache:
        ckpt = toyclip.pretrain(spec, cache=cache, progress=False)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    scale = float(state["logit_scale"].exp())
    committed_path = os.path.join(ROOT, "results", "toy", "tables", "toy_clip_metrics.json")
    with open(committed_path) as f:
        committed = json.load(f)["variants"]["clip-like-gap"]["metrics"]["logit_scale"]
    print(f"final logit scale {scale!r} here, {committed!r} committed: "
          f"{'identical' if scale == committed else f'differs by {scale - committed:+.6f}'}")


if __name__ == "__main__":
    main()
