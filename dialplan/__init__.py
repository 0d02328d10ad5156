"""Asterisk's side of the system: configuration rendered from templates, and IVR prompts."""
