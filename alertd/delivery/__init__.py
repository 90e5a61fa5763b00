"""Delivery: payloads (pure), senders (email, webhook) and the outbox loop that drives them."""
