"""The pipeline: one cached run (``experiment``), the grid of a preset through papermill (``batch``), the audit
of every finished run (``audit``, ``sanity``, ``faithfulness``) and the judgement of the results against the
paper (``claims``, ``field``). Built on :mod:`asgt_lib.core` only."""
