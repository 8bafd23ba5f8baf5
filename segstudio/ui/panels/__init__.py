"""Dock panels: each is one widget that shows or edits one thing."""
