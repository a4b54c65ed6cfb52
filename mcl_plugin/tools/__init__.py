"""Analysis code being moved to tools/ (issue 16)."""
