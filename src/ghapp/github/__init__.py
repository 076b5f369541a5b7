"""Talking to GitHub as a GitHub App: authentication, rate limits, the calls ghapp makes."""
