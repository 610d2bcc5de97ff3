"""asgt_lib: the algorithms of "Exploring the Interplay of Interpretability and Robustness in Deep Neural
Networks: A Saliency-guided Approach" (ST, SGT, AT-FGSM, SGA, ASGT), their attacks, and an experiment runner.

Seams: ``data`` -> ``models`` -> ``attacks`` / ``saliency`` -> ``methods`` -> ``train`` / ``evaluate`` ->
``experiment`` (called by ``cli`` and the book's notebooks); ``config`` resolves parameters, ``storage``
makes every file atomic and checksummed.
"""

__version__ = "0.1.0"
