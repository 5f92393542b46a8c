"""Benchmark: TaI-DPT training time per seed on the toy CLIP, and RN50's text encoder step on CPU.

1. The toy world as the runner builds it: the toy profile's toy CLIP (pretrained here if it is not
   in the cache yet: minutes) and its training corpus (template generator, the profile's
   ``corpus_size`` sentences plus the single-label prompts); TaI-DPT with the official recipe
   (20 epochs, batch 512, n_ctx 16; the toy CLIP's 32-token context, every sentence and prompt cut to
   its longest one, which is exact under the causal mask) for one seed. Prints the seconds (wall, and
   CPU time, which other processes on the machine do not inflate) of the one-off sentence features
   and of training, seconds per step, and the held-out text mAP of a 10% split of the corpus
   (recorded only).
2. RN50's text transformer (random init, ``RN50-quickgelu``): one forward + backward through the 2 x 80
   class prompts (global and local) of a TaI-DPT step, cut to the longest prompt (as here) and at the
   official 77 positions; the ratio to the toy step and the projected seconds of a seed of the same
   corpus on RN50 on this CPU.

``--random-init`` uses a random-init toy CLIP of the same architecture (training time does not depend
on the weights) instead of pretraining one. Usage:
python benchmarks/taidpt.py [--cache .cache/lcmc] [--seed 0] [--epochs 20] [--random-init] [--rn50-steps 3]
"""
import argparse
import os
import time

import torch

from lcmc_core.cache import cache_dir
from lcmc_core.experiments.comparison import build_training_corpus
from lcmc_core.experiments.profiles import load_profile
from lcmc_core.images import toyclip
from lcmc_core.images.models import has_local_branch, load_clip
from lcmc_core.method import taidpt as T
from lcmc_core.method.classifier import split_validation
from lcmc_core.text.label_sets import get_label_set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rn50_step_seconds(steps: int, classnames) -> tuple[float, float, int]:
    """Seconds of one prompt forward + backward through RN50's text tower: (cut to the longest prompt, 77 positions, length)."""
    torch.manual_seed(0)
    loaded = load_clip("RN50-quickgelu", pretrained=None)
    model = loaded.model.eval().requires_grad_(False)
    learner = T.PromptLearner(loaded, classnames, T.TaIDPTConfig(), generator=torch.Generator().manual_seed(0))
    pad = model.token_embedding(torch.zeros(1, 1, dtype=torch.long)).detach()

    def step(full: bool) -> float:
        t0 = time.perf_counter()
        g, loc = learner()
        emb = torch.cat([g, loc])
        if full:
            emb = torch.cat([emb, pad.expand(emb.shape[0], model.context_length - emb.shape[1], -1)], dim=1)
        out = T.encode_text_embeddings(model, emb, torch.cat([learner.pool_index] * 2))
        torch.nn.functional.normalize(out, dim=-1).sum().backward()
        learner.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    step(False)  # warm-up
    cut = min(step(False) for _ in range(steps))
    full = min(step(True) for _ in range(steps))
    return cut, full, int(learner.pool_index.max()) + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=os.environ.get("LCMC_CACHE_DIR") or os.path.join(ROOT, ".cache", "lcmc"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--random-init", action="store_true", help="random-init toy CLIP instead of the pretrained one")
    parser.add_argument("--rn50-steps", type=int, default=3, help="timed RN50 steps (the fastest counts)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")

    prof = load_profile("toy").params
    ls = get_label_set(prof["dataset"])
    spec = toyclip.toy_clip_specs(prof["toy_size"], [prof["toy_variant"]], seed=prof["seed"])[0]
    if args.random_init:
        torch.manual_seed(0)
        loaded, which = load_clip(spec.model, pretrained=None), f"{spec.model} (random init)"
    else:
        t0 = time.perf_counter()
        loaded = toyclip.load_toy_clip(spec, cache=cache_dir(args.cache), progress=False)
        which = f"{spec.model} {spec.variant} (pretrained toy CLIP, ready in {time.perf_counter() - t0:.1f} s)"
    assert has_local_branch(loaded.model)
    corpus = build_training_corpus(ls, size=prof["corpus_size"], seed=prof["seed"])
    train_idx, val_idx = split_validation(len(corpus), 0.1, seed=args.seed)
    train, val = corpus.select(train_idx), corpus.select(val_idx)
    config = T.TaIDPTConfig(epochs=args.epochs)
    print(f"model {which}; corpus {len(corpus)} texts ({prof['corpus_size']} generated + prompts), "
          f"train {len(train)}, held-out {len(val)}, {len(ls)} classes")

    t0, c0 = time.perf_counter(), time.process_time()
    feats = T.text_token_features(loaded, train.texts)
    val_feats = T.text_token_features(loaded, val.texts)
    t_feat = time.perf_counter() - t0
    t0, c1 = time.perf_counter(), time.process_time()
    est = T.TaIDPT(config, seed=args.seed).fit(loaded, feats, train.targets, list(ls.prompt_names),
                                               val=(val_feats, val.targets))
    t_fit = time.perf_counter() - t0
    cpu_feat, cpu_fit = c1 - c0, time.process_time() - c1
    steps = config.epochs * (len(train) // config.batch_size)
    toy_step = t_fit / steps
    last = est.history_[-1]
    print(f"toy TaI-DPT: sentence features {t_feat:.1f} s (L = {feats.local.shape[1]} tokens, "
          f"{feats.local.numel() * 2 / 2**20:.0f} MiB float16); training {t_fit:.1f} s for {config.epochs} epochs, "
          f"{steps} steps, {toy_step * 1e3:.1f} ms/step")
    print(f"toy held-out text mAP (merged / global / local): {last['val_map']:.1f} / {last['val_map_global']:.1f} / "
          f"{last['val_map_local']:.1f} (chance {100 * val.targets.mean():.1f})")
    print(f"seconds per seed (toy CLIP): {t_feat + t_fit:.1f} wall; CPU time {cpu_feat + cpu_fit:.1f} s over "
          f"{torch.get_num_threads()} threads (features {cpu_feat:.1f}, training {cpu_fit:.1f}; wall >> CPU / threads "
          f"means other processes shared the cores)")

    coco = list(get_label_set("coco2014").prompt_names)
    cut, full, length = rn50_step_seconds(args.rn50_steps, coco)
    print(f"RN50 text encoder, 2 x {len(coco)} prompts, forward + backward: {cut * 1e3:.0f} ms/step at {length} "
          f"positions, {full * 1e3:.0f} ms/step at 77 (x{full / cut:.1f})")
    print(f"ratios: RN50 step / toy step = {cut / toy_step:.1f} (cut), {full / toy_step:.1f} (77 positions); "
          f"a seed of this corpus on RN50 here ~ {steps * cut / 60:.1f} min (cut), {steps * full / 60:.1f} min (77)")


if __name__ == "__main__":
    main()
