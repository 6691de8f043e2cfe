"""Where each file handle belongs and how far each project is from it (DESIGN.md section 4)."""
