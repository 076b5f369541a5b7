"""Job scheduling: when cron and interval triggers fire."""
