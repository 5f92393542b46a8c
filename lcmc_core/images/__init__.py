"""Images and CLIP: loading models, extracting (cached) features, the benchmark datasets, the toy world and its toy CLIP.

``models`` (:func:`~.models.load_clip` for every weight format); ``features`` (global and local
image embeddings, text embeddings, the on-disk feature cache); ``datasets`` (emoji-voc, voc2007,
coco2014, nuswide behind one ``load``); ``toyworld`` (the offline EmojiVOC scenes and captions);
``toyclip`` (pretraining the toy CLIP). Model configs and the sprite sheet are data files here.
"""
