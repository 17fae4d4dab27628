"""A run's folder and what is made from it: ingest, figures, charts, report, JUnit, merge."""
