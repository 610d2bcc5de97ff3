"""The judgement of finished runs: the audit of every model (``audit``: robustness ``sanity`` checks and saliency
``faithfulness``), the paper's claims against the measurements (``claims``) and ASGT against the field's baselines
(``field``). Built on :mod:`asgt_lib.core` and :mod:`asgt_lib.pipeline`; the book (:mod:`asgt_lib.report`) words
and draws what it decides."""
