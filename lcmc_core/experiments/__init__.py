"""The paper's experiments: parameters and profiles, the experiment, the comparison's rows, seeds, ablations.

``params`` (:class:`~.params.Params`: every parameter of a run, the method's own taken from the
estimator); ``profiles`` (the packaged YAML profiles and how a run's parameters are resolved from
them); ``experiment`` (parameters -> model, test set, corpus, fitted estimators); ``rows`` (the
comparison's rows: stable identifiers, display names, families); ``comparison`` (every row on one
dataset); ``seeds`` (several seeds, intervals, verdicts); ``ablations``; ``published`` (numbers to
compare against, with sources).
"""
