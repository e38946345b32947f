"""The reliability suite (issue 12): faults injected into every part, each scenario ending in an exactly-once check.

Every scenario is marked ``slow`` and runs in ``make test``. Each records one row of the
README's "Faults survived" table through :func:`harness.record_survived`; ``make faults``
runs this package alone and rewrites that table from the rows (``tests/reliability/table.py``).
"""
