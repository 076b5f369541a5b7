"""Runners: how a session runs (Claude Code, a shell command, a built-in analyzer)."""
