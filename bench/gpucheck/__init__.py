"""The GPU checks of `bench/gpu_checks.py`, one module per stage (run that script, not this package)."""
