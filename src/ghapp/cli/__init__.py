"""The ghapp command line."""
