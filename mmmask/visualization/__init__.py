"""Visualisation helpers (mask browsing, reconstructions)."""
