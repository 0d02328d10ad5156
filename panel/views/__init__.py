"""The panel's request handlers, one module per area."""
