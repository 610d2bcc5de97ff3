"""The report: the figures (``plots``) and the Jupyter Book built from finished runs (``book``)."""
