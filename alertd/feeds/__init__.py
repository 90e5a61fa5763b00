"""Feeds: fetch bytes politely (I/O), parse bytes into items (pure)."""
