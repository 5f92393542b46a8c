"""Running the notebooks headlessly and checking a rerun: ``reproduce`` (the papermill runner), ``provenance``
(versions, git, machine, the manifest), ``readme`` (the results README), ``verify`` (a rerun against the
committed results).

The harness sits on top: it resolves a profile (:mod:`lcmc_core.experiments.profiles`), runs each
numbered notebook in a fresh kernel, records what it wrote and how it ended, and never computes a
result itself.
"""
