"""Notification channels, templates, preferences and the outbox."""
