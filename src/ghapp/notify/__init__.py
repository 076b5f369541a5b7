"""Notifications: notifier configs, message formats and delivery."""
