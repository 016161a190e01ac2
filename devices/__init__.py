"""spicevm devices package."""
