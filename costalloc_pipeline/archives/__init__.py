"""Archived objects of handles: find them, restore them, make them live again."""
