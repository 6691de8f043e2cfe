"""`costalloc plan`: what assigning (or unassigning) a project would do, computed without writing.

Pure planning (traffic.py: the S3 requests the mover would send; costs.py: what they and the storage
they leave behind cost; timing.py: how long they take; shares.py: the groupings) is apart from
the reads that feed it (inputs.py), the orchestration (assignment.py) and the report (report.py).
"""
