"""The report: the figures (``plots``), the wording of the audit pages (``audit_pages``) and the Jupyter Book
built from finished runs (``book``)."""
