"""The method, tensors in and tensors out: CoMC's classifier and mapping, zero-shot weights, metrics, gap.

``comc`` (the :class:`~.comc.CoMC` estimator); ``classifier`` (the text-only classifier and its
official training recipe); ``mapping`` (the cross-modal mapping and global + local scoring);
``zero_shot`` (zero-shot weights, the text memory); ``metrics`` (mAP, F1, bootstrap);
``gap`` (modality-gap measures). Nothing here loads models, reads datasets or writes caches.
``taidpt`` (TaI-DPT, the prompt-tuning rival: the one module that runs a given CLIP text tower and caches).
``official`` (the CoMC authors' released COCO classifier and text memory, packaged under
``assets/official_comc/`` and read safely, SHA-256-checked).
"""
