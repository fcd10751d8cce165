"""Case facts a question states itself, rendered from the record.

A published pair is ``(image, question) -> answer``: the case information is not shipped. So a
question type that relies on a fact the image does not show (symptoms, history, size) must say
that fact in its own words; ``states: [fact]`` in a question bank prepends the sentence rendered
here. A fact that renders to nothing makes its question type ineligible for that record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Context = dict[str, Any]

# PAD-UFES-20 symptom words (reader vocabulary) -> how a sentence says them
_PAD_SYMPTOMS = {
    "itching": "itching",
    "growing": "growth",
    "pain": "pain",
    "changing": "a change in appearance",
    "bleeding": "bleeding",
    "elevated": "elevation",
}


def join(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _who(ctx: Context) -> str:
    return "person" if ctx.get("source") == "scin" else "patient"


def reported_symptoms(ctx: Context) -> str:
    symptoms = list(ctx.get("symptoms") or [])
    if not symptoms:
        return ""
    if ctx.get("source") == "pad_ufes_20":
        said = join([_PAD_SYMPTOMS.get(s, s) for s in symptoms])
        denied = join([_PAD_SYMPTOMS.get(s, s) for s in ctx.get("symptoms_denied") or []])
        text = f"About this lesion, the patient reports {said}"
        return f"{text}, and denies {denied}." if denied else f"{text}."
    return f"The {_who(ctx)} reports {join(symptoms)}."


def other_symptoms(ctx: Context) -> str:
    others = list(ctx.get("other_symptoms") or [])
    return f"The {_who(ctx)} also reports {join(others)}." if others else ""


def textures(ctx: Context) -> str:
    items = list(ctx.get("textures") or [])
    return f"The {_who(ctx)} describes the affected skin as {join(items)}." if items else ""


def body_parts(ctx: Context) -> str:
    items = list(ctx.get("body_parts") or [])
    if not items:
        return ""
    return f"The {_who(ctx)} reports the condition on these body areas: {join(items)}."


def lesion_size(ctx: Context) -> str:
    d1, d2 = ctx.get("diameter_1_mm"), ctx.get("diameter_2_mm")
    sizes = [f"{d:g}" for d in (d1, d2) if isinstance(d, (int, float)) and d > 0]
    if not sizes:
        return ""
    return f"The lesion measures {' x '.join(sizes)} mm."


def risk_history(ctx: Context) -> str:
    """PAD-UFES-20's questionnaire: skin-cancer and cancer history, smoking, alcohol, pesticides."""
    said = []
    for key, yes, no in (
        (
            "skin_cancer_history",
            "a personal history of skin cancer",
            "no personal history of skin cancer",
        ),
        ("cancer_history", "a history of other cancer", "no history of other cancer"),
    ):
        value = ctx.get(key)
        if value is True:
            said.append(f"has {yes}")
        elif value is False:
            said.append(f"has {no}")
    for key, yes, no in (
        ("smoke", "smokes", "does not smoke"),
        ("drink", "drinks alcohol", "does not drink alcohol"),
        ("pesticide", "has been exposed to pesticides", "reports no pesticide exposure"),
    ):
        value = ctx.get(key)
        if value is True:
            said.append(yes)
        elif value is False:
            said.append(no)
    return f"The patient {join(said)}." if said else ""


def melanoma_history(ctx: Context) -> str:
    """HIBA's personal and family history of melanoma."""
    said = []
    for key, what in (("personal_hx_mm", "personal"), ("family_hx_mm", "family")):
        value = ctx.get(key)
        if value is True:
            said.append(f"a {what} history of melanoma")
        elif value is False:
            said.append(f"no {what} history of melanoma")
    return f"The patient has {join(said)}." if said else ""


FACTS: dict[str, Callable[[Context], str]] = {
    "reported_symptoms": reported_symptoms,
    "other_symptoms": other_symptoms,
    "textures": textures,
    "body_parts": body_parts,
    "lesion_size": lesion_size,
    "risk_history": risk_history,
    "melanoma_history": melanoma_history,
}


def render_facts(names: tuple[str, ...], ctx: Context) -> str | None:
    """The sentences stating ``names`` for this record, or None when any of them is unknown."""
    out = []
    for name in names:
        text = FACTS[name](ctx)
        if not text:
            return None
        out.append(text)
    return " ".join(out)


def question_age(ctx: Context) -> Any:
    """The age as a question says it: "about 55" where the source rounds ages, else 55."""
    age = ctx.get("age")
    if age is not None and ctx.get("age_approximate"):
        return f"about {age}"
    return age
