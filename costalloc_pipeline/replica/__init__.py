"""The replica of the repository's file tables that planning reads (DESIGN.md section 5)."""
