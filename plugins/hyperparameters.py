"""Hyperparameter overrides for trainer plugins: one merge rule for every backend.

Unknown keys are errors (a typo silently falling back to a default would change the run), and so are
non-positive values for the keys a backend names as sizes or rates, values outside a key's choices, switches (keys
whose default is true or false) set to anything else, and NaN or infinite numbers; every offender is listed at
once, before any model loads.
"""

from __future__ import annotations

import math

from asr_flywheel.errors import InputError, Problem


def merge_hyperparameters(
    defaults: dict,
    overrides: dict,
    backend: str,
    *,
    positive: tuple[str, ...] = (),
    choices: dict[str, tuple[str, ...]] | None = None,
) -> dict:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults))
        raise InputError(
            f"unknown {backend} hyperparameter(s)",
            [Problem(0, k, f"not a {backend} hyperparameter (known: {known})") for k in unknown],
        )
    hp = {**defaults, **overrides}
    problems = [
        Problem(0, k, f"must be a finite number, got {v!r}")
        for k, v in hp.items()
        if isinstance(v, float) and not math.isfinite(v)
    ]
    flagged = {pr.field for pr in problems}
    problems += [
        Problem(0, k, f"must be a positive number, got {hp[k]!r}")
        for k in positive
        if k not in flagged and (isinstance(hp[k], bool) or not isinstance(hp[k], int | float) or hp[k] <= 0)
    ]
    problems += [
        Problem(0, k, f"must be one of {', '.join(allowed)}, got {hp[k]!r}")
        for k, allowed in (choices or {}).items()
        if str(hp[k]).lower() not in allowed
    ]
    problems += [
        Problem(0, k, f"must be true or false, got {hp[k]!r}")
        for k, default in defaults.items()
        if isinstance(default, bool) and not isinstance(hp[k], bool)
    ]
    if problems:
        raise InputError(f"invalid {backend} hyperparameters", sorted(problems))
    return hp
