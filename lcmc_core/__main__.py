"""Command line: ``python -m lcmc_core reproduce --profile toy`` and ``python -m lcmc_core toy-clips`` (see ``--help``)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    """Entry point of ``python -m lcmc_core``."""
    from . import reproduce as reproduce_mod

    parser = argparse.ArgumentParser(prog="python -m lcmc_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="rerun the numbered notebooks for a profile into results/<profile>/",
                         description=reproduce_mod.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    reproduce_mod.add_arguments(rep)
    toy = sub.add_parser("toy-clips", help="build the toy world and every toy CLIP variant; write their metrics")
    toy.add_argument("--size", default="toy", choices=["toy", "smoke"])
    toy.add_argument("--out", default=None, help="output folder (default results/<size>)")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--cache", default=None, help="cache folder (default $LCMC_CACHE_DIR or ~/.cache/lcmc)")
    gen = sub.add_parser("generate-corpus", help="generate (or resume) a training corpus with a sentence generator")
    gen.add_argument("--label-set", required=True, help="voc2007 | coco2014 | nuswide | emoji-voc")
    gen.add_argument("--n", type=int, required=True, help="number of requests (sampled label sets)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--generator", default="template", choices=["template", "openai", "transformers"])
    gen.add_argument("--model", default=None, help="LLM name (openai) or Hugging Face id/folder (transformers)")
    gen.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    gen.add_argument("--api-key-env", default="OPENAI_API_KEY",
                     help="NAME of the environment variable holding the key (the key itself is never an argument)")
    gen.add_argument("--concurrency", type=int, default=8)
    gen.add_argument("--time-budget-s", type=float, default=None)
    gen.add_argument("--out", required=True, help="corpus file (.jsonl); rerunning the same command resumes it")
    args = parser.parse_args(argv)

    if args.command == "reproduce":
        return reproduce_mod.main_reproduce(args)
    if args.command == "generate-corpus":
        from .generation import generate_corpus
        options = {}
        if args.generator == "openai":
            options = dict(model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
                           concurrency=args.concurrency)
        elif args.generator == "transformers":
            options = dict(model=args.model)
        summary = generate_corpus(args.out, args.label_set, args.n, args.seed, args.generator,
                                  time_budget_s=args.time_budget_s, **options)
        print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "run"}, indent=1))
        return 0 if summary.complete else 3
    if args.command == "toy-clips":
        t0 = time.perf_counter()
        from .toyclip import build_variants
        build_variants(args.size, Path(args.out or Path("results") / args.size), seed=args.seed, cache=args.cache)
        print(f"toy-clips --size {args.size}: done in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
