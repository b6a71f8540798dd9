"""The cross-family summary report (reads every family's metrics files, imports none)."""
