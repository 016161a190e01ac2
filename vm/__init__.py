"""spicevm vm package."""
