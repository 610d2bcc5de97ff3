"""asgt_lib: the algorithms of "Exploring the Interplay of Interpretability and Robustness in Deep Neural
Networks: A Saliency-guided Approach" (ST, SGT, AT-FGSM, SGA, ASGT), their attacks, and the pipeline and report
that check the paper's claims with them.

Four layers; each imports only from the layers above it in this list:

- :mod:`asgt_lib.core`, the research: ``config`` (one run's parameters) -> ``data`` -> ``models`` ->
  ``attacks`` / ``saliency`` -> ``methods`` -> ``train`` / ``evaluate``; ``compute`` places work on the device,
  ``storage`` makes every file atomic and checksummed.
- :mod:`asgt_lib.pipeline`, running experiments: ``experiment`` (one run, cached) and ``batch`` (the grid of a
  preset through papermill, in ``kernels``).
- :mod:`asgt_lib.judgement`, judging their results: ``audit`` of every model (robustness ``sanity`` checks,
  saliency ``faithfulness``), the paper's ``claims`` against the measurements and ASGT against the ``field``.
- :mod:`asgt_lib.report`, what readers get: ``plots``, the pages' wording (``audit_pages``), ``export`` (every
  number of a preset as one tidy table) and ``book`` (the build).

``cli`` (the ``asgt`` command) sits on top of all three.
"""

__version__ = "0.1.0"
