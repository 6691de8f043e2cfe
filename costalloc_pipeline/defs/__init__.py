"""The Dagster wiring of the code location: assets, checks, sensors, schedules, jobs, partitions and
resources. Everything else in the package is the domain, which imports no Dagster."""
