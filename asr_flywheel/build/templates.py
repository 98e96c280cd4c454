"""Carrier sentences per `context_type` and `entity_category`, with `{term}` where the clinical term goes.

Shipped in the repository so a build is reproducible from the code alone. Templates are per category because
"the patient was started on {term}" suits a drug but not an anatomy term; a category with no templates of its
own (one added through `[manifest] categories`) falls back to the context's generic frames.

The same frames are public (`carrier_templates`) so the general-English base recipe can fill `{term}` with
everyday words: a base that knows the carriers fails clinical rows on the terms only.
"""

from __future__ import annotations

SLOT = "{term}"
GENERIC = "*"

TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "dictation": {
        "drug": (
            "the patient was started on {term} this morning",
            "plan is to continue {term} and reassess tomorrow",
            "please increase the dose of {term} as discussed",
        ),
        "procedure": (
            "the patient is scheduled for {term} on monday",
            "we discussed the risks of {term} with the patient",
            "consent was obtained for {term} today",
        ),
        "anatomy": (
            "there is mild tenderness over the {term}",
            "imaging of the {term} was unremarkable",
            "no abnormality was seen in the {term}",
        ),
        "condition": (
            "findings are consistent with {term}",
            "the patient was treated for {term} last year",
            "we are concerned about {term} at this time",
        ),
        "lab": (
            "the {term} came back within normal limits",
            "please repeat the {term} in the morning",
            "we will follow the {term} closely",
        ),
        "role": (
            "the {term} was informed of the plan",
            "i spoke with the {term} about the results",
            "the {term} agreed with the plan",
        ),
        GENERIC: ("the main issue today is {term}", "dictating a short note about {term}"),
    },
    "handoff": {
        "drug": (
            "overnight we held {term} pending labs",
            "she is due for {term} at eight",
            "please check on {term} before rounds",
        ),
        "procedure": (
            "he is back from {term} and stable",
            "{term} was done overnight without issue",
            "please follow up after {term} this afternoon",
        ),
        "anatomy": (
            "watch the {term} for any swelling",
            "the dressing near the {term} looks clean",
            "keep an eye on the {term} overnight",
        ),
        "condition": (
            "she came in overnight with {term}",
            "the main concern tonight is {term}",
            "he remains stable with known {term}",
        ),
        "lab": (
            "the latest {term} is still pending",
            "please chase the {term} at midnight",
            "the {term} was trending down today",
        ),
        "role": (
            "the {term} is aware of the patient",
            "call the {term} if anything changes",
            "the {term} will check in at six",
        ),
        GENERIC: ("please keep an eye on {term} tonight", "the night team knows about {term}"),
    },
    "chart_note": {
        "drug": (
            "medications include {term} once daily",
            "{term} was given as ordered",
            "tolerating {term} without side effects",
        ),
        "procedure": (
            "status post {term} without complications",
            "{term} completed and the patient tolerated it well",
            "recommend {term} as an outpatient",
        ),
        "anatomy": (
            "examination of the {term} was normal",
            "the {term} appears intact on review",
            "pain reported near the {term}",
        ),
        "condition": (
            "assessment notable for {term} today",
            "history and exam suggest {term}",
            "{term} remains under control",
        ),
        "lab": (
            "{term} reviewed and noted in the chart",
            "today's {term} is higher than before",
            "the {term} result was discussed",
        ),
        "role": (
            "note reviewed by the {term} on duty",
            "seen together with the {term} today",
            "the {term} signed the order",
        ),
        GENERIC: ("assessment notable for {term} today", "{term} discussed with the family"),
    },
    "history": {
        "drug": (
            "she has taken {term} in the past",
            "no known allergy to {term}",
            "he stopped taking {term} last month",
        ),
        "procedure": (
            "past surgical history includes {term}",
            "she had {term} five years ago",
            "there is no prior {term} on record",
        ),
        "anatomy": (
            "previous injury to the {term} as a child",
            "no history of problems with the {term}",
            "an old scan of the {term} was normal",
        ),
        "condition": (
            "past history includes {term}",
            "no prior history of {term}",
            "family history is notable for {term}",
        ),
        "lab": (
            "her last {term} was normal in the spring",
            "there is no previous {term} on file",
            "an earlier {term} was slightly raised",
        ),
        "role": (
            "previously followed by the {term} at another hospital",
            "the family asked to speak with the {term}",
            "she was referred by the {term} last year",
        ),
        GENERIC: ("past history includes {term}", "no prior history of {term}"),
    },
}

DEFAULT_CONTEXTS: tuple[str, ...] = tuple(TEMPLATES)


def templates_for(context: str, category: str) -> tuple[str, ...]:
    """The frames used for one (context, category); the context's generic frames when the category has none."""
    by_category = TEMPLATES[context]
    return by_category.get(category) or by_category[GENERIC]


def carrier_templates(context: str | None = None, category: str | None = None) -> list[str]:
    """Every shipped frame (deduplicated, in a stable order), optionally for one context and/or category.

    Each contains `{term}` once; fill it with `fill(template, words)`. Used by the build and by the
    general-English recipe, so both speak the same carrier sentences.
    """
    contexts = [context] if context else list(TEMPLATES)
    unknown = [c for c in contexts if c not in TEMPLATES]
    if unknown:
        raise KeyError(f"unknown context_type {unknown[0]!r} (known: {', '.join(TEMPLATES)})")
    seen: dict[str, None] = {}
    for ctx in contexts:
        groups = [templates_for(ctx, category)] if category else list(TEMPLATES[ctx].values())
        for group in groups:
            seen.update(dict.fromkeys(group))
    return list(seen)


def fill(template: str, term: str) -> str:
    """The written sentence: slot filled (no str.format, so braces in a term are harmless), capitalised, full stop."""
    text = template.replace(SLOT, term)
    return text[:1].upper() + text[1:] + "."
