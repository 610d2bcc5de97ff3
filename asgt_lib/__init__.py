"""asgt_lib: the algorithms of "Exploring the Interplay of Interpretability and Robustness in Deep Neural
Networks: A Saliency-guided Approach" (ST, SGT, AT-FGSM, SGA, ASGT), their attacks, and the pipeline and report
that check the paper's claims with them.

Three layers; each imports only from the layers above it in this list:

- :mod:`asgt_lib.core`, the research: ``config`` (one run's parameters) -> ``data`` -> ``models`` ->
  ``attacks`` / ``saliency`` -> ``methods`` -> ``train`` / ``evaluate``; ``compute`` places work on the device,
  ``storage`` makes every file atomic and checksummed.
- :mod:`asgt_lib.pipeline`, experiments at scale: ``experiment`` (one run, cached), ``batch`` (the grid through
  papermill), ``audit`` (``sanity``, ``faithfulness``), and the judgement of finished runs against the paper
  (``claims``, ``field``).
- :mod:`asgt_lib.report`, the book: ``plots`` and ``book`` (the build).

``cli`` (the ``asgt`` command) sits on top of all three.
"""

__version__ = "0.1.0"
