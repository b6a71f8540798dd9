"""lmlab: reproducible infilling, ensemble, weighted-loss and monotonic LM experiments.

The library holds pure, typed functions; the DVC stage scripts in ``stages/`` parse
arguments, load their ``params.yaml`` section and call one function from here.
"""

__version__ = "0.1.0"
