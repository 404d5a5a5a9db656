"""Boundaries to outside systems: one module per system, everything else calls these."""
