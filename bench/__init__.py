"""Benchmarks of costalloc against s5cmd and the AWS CLI, and of its planning and repoint steps.

`python -m bench` (or `make bench`) sets up its own moto server and PostgreSQL databases, runs
every section and prints figures, ratios and the issue's targets; see BENCHMARKS.md.
"""
