"""Built-in analyzers and the metrics threshold triggers watch.

* :mod:`ghapp.analysis.claude_md`: ``context/analyze``, the CLAUDE.md analyzer.
* :mod:`ghapp.analysis.models`: the ``analysis_results`` table (one row per analysis).
* :mod:`ghapp.analysis.results`: storing a result and reading a repository's trend.
* :mod:`ghapp.analysis.metrics`: the metric providers for threshold triggers.

Kept free of imports: ``ghapp.db.models`` imports the table module, and analyzers are
loaded by ``ghapp.runners.builtin`` when a built-in job first runs.
"""
