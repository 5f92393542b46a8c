"""The command line: ``python -m lcmc_core reproduce | verify | toy-clips | generate-corpus | environment``.

``reproduce`` reruns the numbered notebooks for a profile into ``results/<profile>/``; ``verify``
compares a rerun's tables with the committed ones (exit 1 when a cell differs); ``toy-clips``
builds the toy world and every toy CLIP variant and writes their metrics; ``generate-corpus`` writes
(or resumes) a training corpus with a sentence generator; ``environment`` lists the installed packages
that differ from ``requirements.lock`` (``--help`` on each). Every error a user can cause (bad
parameters, missing files, an unusable dataset or endpoint) is printed as one ``error:`` line with
exit status 2; a failing notebook exits with 1; an incomplete run (an LLM corpus not finished)
or an incomplete corpus job with 3; Ctrl-C with 130; SIGTERM with 143 (the manifest says "stopped").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from .experiments.profiles import available_profiles
    parser.add_argument("--profile", default="toy",
                        help=f"profile name ({', '.join(available_profiles())}) or path of a .yaml profile")
    parser.add_argument("--only", action="append", default=None, metavar="NN",
                        help="run only these notebooks, by number (repeatable or comma-separated: --only 02,03)")
    parser.add_argument("--out", default=None, help="results folder (default results/<profile>)")
    parser.add_argument("--set", dest="set", action="append", default=None, metavar="KEY=VALUE",
                        help="override a parameter (value read as YAML; nested keys with dots, method.alpha=0.5, "
                             "or a unique name, alpha=0.5; NN.KEY=VALUE for one notebook); repeatable")
    parser.add_argument("--root", default=None, metavar="PATH", help="dataset folder: shortcut for --set data_root=PATH")
    parser.add_argument("--list", action="store_true",
                        help="print the notebooks and every resolved parameter with its source, run nothing")
    parser.add_argument("--cache", default=None,
                        help="cache folder for the notebooks' kernels (sets LCMC_CACHE_DIR; default $LCMC_CACHE_DIR "
                             "or .cache/lcmc of the checkout)")
    parser.add_argument("--notebooks", default=None, metavar="DIR", help="notebook folder (default ./notebooks)")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel name (default python3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or per-notebook lines")


def _run_reproduce(args) -> int:
    from .errors import ConfigError
    from .experiments.profiles import parse_set
    from .harness import reproduce as rp

    overrides = parse_set(args.set)
    if args.root is not None:
        if "data_root" in overrides and overrides["data_root"] != args.root:
            raise ConfigError(f"--root {args.root!r} and --set data_root={overrides['data_root']!r} disagree; give one")
        overrides["data_root"] = args.root
    only = [x.strip() for chunk in (args.only or []) for x in str(chunk).split(",") if x.strip()] or None
    if args.list:
        prof, out_dir, selected, values = rp.plan(args.profile, only, args.out, overrides, args.notebooks,
                                                 check_required=False)
        print(rp.format_plan(prof, out_dir, selected, values))
        missing = [k for k in prof.required if not overrides.get(k) and not prof.params.get(k)]
        if missing:
            print(f"note: a run needs {', '.join(missing)} (e.g. --root PATH)")
        return 0
    if args.cache:
        os.environ["LCMC_CACHE_DIR"] = str(Path(args.cache).expanduser().absolute())
    out_dir = rp.reproduce(args.profile, only=only, out=args.out, overrides=overrides, notebooks_dir=args.notebooks,
                           progress=not args.no_progress, kernel_name=args.kernel)
    status = (rp.read_manifest(out_dir / rp.MANIFEST_NAME) or {}).get("status")
    if status == "incomplete":
        print(f"incomplete: some notebook could not finish its work (see {out_dir / rp.MANIFEST_NAME}); "
              f"rerun the same command to resume", file=sys.stderr)
        return 3
    return 0


def _run_verify(args) -> int:
    from .harness.verify import TOLERANCE, Tolerance, format_report, verify

    tol = Tolerance(rel=TOLERANCE.rel if args.rel_tol is None else args.rel_tol,
                    abs=TOLERANCE.abs if args.abs_tol is None else args.abs_tol)
    report = verify(args.profile, out=args.out, reference=args.reference, tolerance=tol, revision=args.revision,
                    conclusions=args.conclusions, tolerances_file=args.tolerances)
    print(format_report(report, max_per_file=args.max_lines))
    return 0 if report.ok else 1


def _run_generate_corpus(args) -> int:
    from .text.generation import generate_corpus

    options = {}
    if args.generator == "openai":
        options = dict(model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
                       concurrency=args.concurrency, connect_timeout_s=args.connect_timeout_s,
                       read_timeout_s=args.read_timeout_s, max_attempts=args.max_attempts)
    elif args.generator == "transformers":
        options = dict(model=args.model)
    summary = generate_corpus(args.out, args.label_set, args.n, args.seed, args.generator,
                              time_budget_s=args.time_budget_s, **options)
    print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "run"}, indent=1))
    return 0 if summary.complete else 3


def _run_environment(args) -> int:
    from .environment import find_lock, format_differences, lock_differences, oldest_allowed

    if args.oldest:
        print(oldest_allowed(args.oldest))
        return 0
    lock = Path(args.lock) if args.lock else find_lock()
    if lock is None:
        from .errors import ConfigError
        raise ConfigError("no lock file: pass --lock requirements.lock (this package does not run from a checkout)")
    diffs = lock_differences(lock)
    print(format_differences(diffs, lock))
    return 1 if diffs and args.strict else 0


def _run_toy_clips(args) -> int:
    from .images.toyclip import build_variants

    t0 = time.perf_counter()
    build_variants(args.size, Path(args.out or Path("results") / args.size), seed=args.seed, cache=args.cache)
    print(f"toy-clips --size {args.size}: done in {time.perf_counter() - t0:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lcmc_core``."""
    from .harness import reproduce as rp
    from .harness import verify as vf

    parser = argparse.ArgumentParser(prog="python -m lcmc_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="rerun the numbered notebooks for a profile into results/<profile>/",
                         description=rp.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _reproduce_arguments(rep)
    ver = sub.add_parser("verify", help="compare a rerun's tables with the committed ones, cell by cell",
                         description=vf.__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ver.add_argument("--profile", default="toy", help="profile whose results/<profile>/tables are compared")
    ver.add_argument("--out", default=None, help="the rerun's results folder (default results/<profile>)")
    ver.add_argument("--reference", default=None, metavar="DIR",
                     help="folder with the reference tables (default: git HEAD's results/<profile>/tables)")
    ver.add_argument("--revision", default="HEAD", help="git revision of the reference tables (default HEAD)")
    ver.add_argument("--rel-tol", type=float, default=None, help="relative tolerance (default: verify.TOLERANCE)")
    ver.add_argument("--abs-tol", type=float, default=None, help="absolute tolerance (default: verify.TOLERANCE)")
    ver.add_argument("--max-lines", type=int, default=20, help="differences printed per table (default 20)")
    ver.add_argument("--conclusions", action="store_true",
                     help="the reviewer's check: numbers within the measured cross-machine tolerances, verdicts and "
                          "rankings compared as conclusions (passes on another CPU when the conclusions hold)")
    ver.add_argument("--tolerances", default=None, metavar="FILE",
                     help="cross-machine tolerances for --conclusions (default: the packaged measurement)")
    toy = sub.add_parser("toy-clips", help="build the toy world and every toy CLIP variant; write their metrics")
    toy.add_argument("--size", default="toy", choices=["toy", "smoke"])
    toy.add_argument("--out", default=None, help="output folder (default results/<size>)")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--cache", default=None, help="cache folder (default $LCMC_CACHE_DIR or .cache/lcmc)")
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
    gen.add_argument("--connect-timeout-s", type=float, default=10.0, help="seconds to establish a connection")
    gen.add_argument("--read-timeout-s", type=float, default=30.0, help="seconds to wait for an answer")
    gen.add_argument("--max-attempts", type=int, default=5, help="attempts per request")
    gen.add_argument("--time-budget-s", type=float, default=None)
    gen.add_argument("--out", required=True, help="corpus file (.jsonl); rerunning the same command resumes it")
    env = sub.add_parser("environment", help="which installed packages differ from requirements.lock")
    env.add_argument("--lock", default=None, help="lock file (default: requirements.lock of the checkout)")
    env.add_argument("--strict", action="store_true", help="exit 1 when any package differs")
    env.add_argument("--oldest", default=None, metavar="PACKAGE",
                     help="print name==version of the oldest release pyproject.toml allows for PACKAGE, and stop")
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m lcmc_core``: one ``error:`` line and status 2 for anything a user can cause."""
    import warnings

    from .errors import LcmcError
    from .harness.reproduce import NotebookFailed, RunStopped
    warnings.formatwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    run = {"reproduce": _run_reproduce, "verify": _run_verify, "generate-corpus": _run_generate_corpus,
           "toy-clips": _run_toy_clips, "environment": _run_environment}
    try:
        return run[args.command](args)
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RunStopped as exc:
        print(f"stopped: {exc}; the manifest says so, and rerunning resumes from the cache", file=sys.stderr)
        return 143
    except LcmcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system refused (disk full, read-only, a file where a folder belongs, ...)
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        return 2


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line as one ``warning:`` line (not Python's file:line and source line)."""
    return f"warning: {message}\n"


def _os_error_line(exc: OSError) -> str:
    """One line for a file-system error: the file, what happened, and what to do about the common causes."""
    import errno
    hints = {errno.ENOSPC: "the disk is full: free space and rerun (a rerun resumes)",
             errno.EROFS: "the file system is read-only: choose a writable folder (--out, --cache)",
             errno.EACCES: "permission denied: choose a folder you may write (--out, --cache)",
             errno.ENOTDIR: "a file stands where a folder is needed",
             errno.EISDIR: "a folder stands where a file is needed"}
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc)
    hint = hints.get(exc.errno)
    return f"{where}{what}" + (f" ({hint})" if hint else "")


if __name__ == "__main__":
    sys.exit(main())
