"""Notifications (SPEC §7): notifier configs, message formats and delivery."""
