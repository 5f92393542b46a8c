"""lcmc_core: the CoMC method (text-only multi-label classifier + cross-modal mapping) on CLIP.

Modules: ``labels`` (label sets), ``toyworld`` (the offline EmojiVOC world), ``datasets``
(benchmarks behind one ``load``), ``models`` (open_clip models, toy and real), ``toyclip``
(pretraining the toy CLIP).
"""
__version__ = "0.1.0"
