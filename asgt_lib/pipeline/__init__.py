"""Running experiments: one cached run (``experiment``) and the grid of a preset through papermill (``batch``,
whose notebook kernels are in ``kernels``). Built on :mod:`asgt_lib.core` only; the judgement of the finished runs
is :mod:`asgt_lib.judgement`."""
