"""Triggers: what in an event starts a job (slash commands in comments, ...)."""
