"""Hyperparameter overrides for trainer plugins: one merge rule for every backend.

Unknown keys are errors (a typo silently falling back to a default would change the run), and so are
non-positive values for the keys a backend names as sizes or rates; every offender is listed at once.
"""

from __future__ import annotations

from asr_flywheel.errors import InputError, Problem


def merge_hyperparameters(defaults: dict, overrides: dict, backend: str, *, positive: tuple[str, ...] = ()) -> dict:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults))
        raise InputError(
            f"unknown {backend} hyperparameter(s)",
            [Problem(0, k, f"not a {backend} hyperparameter (known: {known})") for k in unknown],
        )
    hp = {**defaults, **overrides}
    bad = [k for k in positive if isinstance(hp[k], bool) or not isinstance(hp[k], int | float) or hp[k] <= 0]
    if bad:
        raise InputError(
            f"invalid {backend} hyperparameters",
            [Problem(0, k, f"must be a positive number, got {hp[k]!r}") for k in bad],
        )
    return hp
