"""Benchmark: feature extraction (DataLoader + preprocessing + model) against the model alone.

Prints, for each model, images/s of `extract_image_features` (no cache) and of the model-only
forward pass on the same preprocessed batches, their ratio (aim >= 0.9: loading is never the
bottleneck), and the speed-up of a cache hit. Random-init weights (speed does not depend on them).
Usage: python benchmarks/features.py [--models lcmc-toy-rn RN50] [--n 64] [--workers 0 2]
"""
import argparse
import tempfile
import time

import torch

from lcmc_core.images import datasets, features
from lcmc_core.images.models import load_clip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["lcmc-toy-rn", "RN50"])
    parser.add_argument("--n", type=int, default=64, help="images per model (the toy model uses 20x more)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name in args.models:
        torch.manual_seed(0)
        loaded = load_clip(name, pretrained=None)
        n = args.n * (20 if name.startswith("lcmc-toy") else 1)
        ds = datasets.load("emoji-voc", split="test", n=n)
        batches = [torch.stack([loaded.preprocess(ds.image(i)) for i in range(s, min(n, s + args.batch_size))])
                   for s in range(0, n, args.batch_size)]
        features.image_embeddings(loaded.model, batches[0][:2])  # warm-up
        t0 = time.perf_counter()
        for b in batches:
            features.image_embeddings(loaded.model, b)
        model_only = n / (time.perf_counter() - t0)
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as cache:
                t0 = time.perf_counter()
                features.extract_image_features(loaded, ds, batch_size=args.batch_size, num_workers=workers,
                                                cache=cache, progress=False)
                full = n / (time.perf_counter() - t0)
                t0 = time.perf_counter()
                features.extract_image_features(loaded, ds, batch_size=args.batch_size, cache=cache, progress=False)
                hit = n / (time.perf_counter() - t0)
            print(f"{name:12s} n={n:5d} workers={workers}: extraction {full:8.1f} img/s, model only "
                  f"{model_only:8.1f} img/s, ratio {full / model_only:.2f}; cache hit {hit:9.1f} img/s "
                  f"(x{hit / full:.0f})")


if __name__ == "__main__":
    main()
