"""spicevm spice package."""
