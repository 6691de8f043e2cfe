"""The move protocol of DESIGN.md section 4: plan bundles, copy, verify, repoint, archive."""
