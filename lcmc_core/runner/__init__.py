"""Running the paper: parameters and profiles, the experiment, the comparison and ablations, reports, the notebook runner.

``params`` (:class:`~.params.Params`: every parameter, declared once); ``profiles`` (the packaged
YAML profiles and how a run's parameters are resolved from them); ``experiment`` (parameters ->
model, test set, corpus, comparison); ``comparison`` (every method's row on one dataset);
``ablations``; ``tables`` (results shaped into the notebooks' tables); ``report`` (writing
figures and tables); ``published`` (numbers to compare against); ``reproduce`` and ``provenance``
(the headless papermill runner and its manifest).
"""
