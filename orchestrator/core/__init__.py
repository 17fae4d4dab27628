"""The shared vocabulary of every package: errors and exit codes, run outcomes, orch's paths."""
