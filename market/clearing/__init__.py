"""Clearing a batch under a design, in the order the data flows:

``prepare`` (batch-wide arrays; what each step sees) -> ``formulation`` (one vectorised
``define_*`` per constraint family into the ``ir`` model) -> ``solvers`` (cvxpy+HiGHS or
highspy behind one protocol) -> ``verify`` (never trust a status alone) -> ``readback``
(solution to awards, need results, prices) -> ``assemble`` (the run's tables) ->
``metrics`` (coordination risks measured on the run). ``run`` drives the steps,
``parallel`` fans out, ``runfolder`` writes the result, ``results`` types it.
"""
