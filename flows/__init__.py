"""Prefect flows and tasks (orchestration only, no domain logic) and the `flywheel` CLI.

Nothing here imports Prefect at package import time; `flows.cycle` does, and is loaded lazily.
"""
