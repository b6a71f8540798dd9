"""lmlab: reproducible infilling, ensemble, weighted-loss and monotonic LM experiments.

The library holds pure, typed functions; the DVC stage scripts in ``stages/`` parse
arguments, load their ``params.yaml`` section and call one function from here.

Importing the package pins the CPU numerics (:mod:`lmlab.numerics`) before torch computes
anything, so a stage's outputs are a function of git and not of the CPU it runs on.
"""

from lmlab.numerics import pin_environment as _pin_environment

_pin_environment()

__version__ = "0.1.0"
