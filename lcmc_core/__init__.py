"""lcmc_core: the CoMC method (text-only multi-label classifier + cross-modal mapping) on CLIP.

Start with :mod:`lcmc_core.experiment` (what the notebooks call) or
:func:`lcmc_core.pipeline.run_comparison` (the method and its baselines in one call).

Data: ``labels`` (label sets, synonyms, extraction), ``corpus`` (sampling, templates, JSONL),
``llm`` + ``generation`` (LLM generators, the resumable generation job), ``toyworld`` (the offline
EmojiVOC world), ``datasets`` (toy and real benchmarks behind ``load``).
Models and features: ``models`` (``load_clip`` through open_clip), ``toyclip`` (pretraining the
toy CLIP), ``features`` (global/local image features, text features, caches).
Method: ``classifier`` (text-only classifier), ``mapping`` (cross-modal mapping, scoring),
``metrics`` (mAP, F1, bootstrap), ``gap`` (modality-gap measures), ``pipeline``, ``ablations``,
``published`` (numbers to compare against).
Notebooks: ``config`` (profiles), ``reproduce`` (papermill runner), ``report`` (figure/table
writers), ``figures_data`` (small helpers behind the figures).
"""
__version__ = "0.1.0"
