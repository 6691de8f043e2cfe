"""Database schema and migrations."""
