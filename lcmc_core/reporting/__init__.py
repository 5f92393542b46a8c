"""Presenting results: tables and generated captions (``tables``), figures of results (``figures``) and of the
data (``data_figures``: the pipeline, the toy world, the toy CLIPs, the corpus), writing them (``saving``).

Data in, tables and figures out: nothing here trains a model or reads a dataset. The experiments'
results (:mod:`lcmc_core.experiments`) are shaped for the notebooks; every figure carries a caption
and axis labels, and every save goes to the run's results folder (:mod:`lcmc_core.outputs`).
"""
