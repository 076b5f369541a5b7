"""Config as code: ``.github/ghapp.yml`` declares a repository's jobs.

* :mod:`ghapp.config.schema` — the file's format, parsed with line numbers and validated;
* :mod:`ghapp.config.webhooks` — which deliveries queue a sync (no I/O on that path);
* :mod:`ghapp.config.sync` — the worker side: read the file, change the jobs, report;
* :mod:`ghapp.config.models` — the ``config_syncs`` table.

Kept free of imports so :mod:`ghapp.db.models` can import the table module.
"""
