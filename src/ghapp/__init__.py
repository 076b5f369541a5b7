"""ghapp: a self-hosted GitHub App that runs agent sessions and automation."""

__version__ = "0.1.0"
