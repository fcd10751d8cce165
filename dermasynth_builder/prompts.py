"""Prompt templates, question banks and recipes, loaded from ``templates/`` and checked up front.

Jinja runs in an immutable sandbox with ``StrictUndefined``. Metadata reaches templates only as
variables, so a value containing ``{{ ... }}`` stays literal text. Every template and question is
checked against the record fields when loaded, and rendered once against an all-null record, so a
typo fails before the first request instead of after ten thousand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .paths import templates_dir
from .question_facts import FACTS, question_age, render_facts
from .records import MALIGNANCY, SourceRecord
from .sources import SOURCES

TASKS = ("caption", "qa")
# Placeholders a question may use: scalar, and never the diagnosis or malignancy.
QUESTION_PLACEHOLDERS = frozenset(
    {
        "anatomic_site",
        "age",
        "sex",
        "age_group",
        "condition_duration",
        "fitzpatrick_skin_type",
        "modality",
        "image_type",
    }
)
COMMON_FIELDS = tuple(f.name for f in fields(SourceRecord) if f.name != "extra")
# Premises a question type may require beyond a field being present (``when:`` in a bank).
CONDITIONS = ("labelled", "min_differential", "malignancy", "age_exact")


class TemplateError(Exception):
    """A template, question bank or recipe is malformed; the message names the file."""


def record_fields(source: str) -> frozenset[str]:
    """The variables a template of ``source`` may use."""
    return frozenset(COMMON_FIELDS) | frozenset(SOURCES[source].extra_fields)


def present(value: Any) -> bool:
    """A field counts as known when it is not null and not an empty string, list or dict."""
    return value is not None and value != "" and value != [] and value != {}


def make_env(root: Path) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def empty_record(source: str) -> SourceRecord:
    """A record of ``source`` whose every optional field is missing."""
    rec = SourceRecord(source, "x", "x.jpg", "clinical", "license", "attribution")
    rec.extra = dict.fromkeys(SOURCES[source].extra_fields)
    for key in ("symptoms_denied", "other_symptoms"):
        if key in rec.extra:
            rec.extra[key] = []
    return rec


@dataclass(frozen=True, slots=True)
class QuestionType:
    name: str
    bank: str
    task: str
    requires: tuple[str, ...]
    weight: float
    self_instruct: bool
    phrasings: tuple[str, ...]
    compiled: tuple[jinja2.Template, ...] = field(repr=False, compare=False)
    states: tuple[str, ...] = ()  # case facts the question states first (question_facts.FACTS)
    when: tuple[tuple[str, Any], ...] = ()  # premises beyond presence (CONDITIONS)

    @property
    def diagnostic(self) -> bool:
        """Seeks a diagnosis: asked only where the record has a diagnosis label."""
        return dict(self.when).get("labelled") is True

    def eligible(self, ctx: dict[str, Any]) -> bool:
        if not all(present(ctx.get(name)) for name in self.requires):
            return False
        if not all(premise_holds(key, value, ctx) for key, value in self.when):
            return False
        return not self.states or render_facts(self.states, ctx) is not None

    def render(self, index: int, ctx: dict[str, Any]) -> str:
        """Phrasing ``index`` for this record, after the case facts the type states."""
        text = self.compiled[index].render({**ctx, "age": question_age(ctx)}).strip()
        facts = render_facts(self.states, ctx) if self.states else ""
        return f"{facts} {text}" if facts else text


def premise_holds(key: str, value: Any, ctx: dict[str, Any]) -> bool:
    """Does the record meet the premise ``key: value`` of a question type?"""
    if key == "labelled":
        return present(ctx.get("diagnosis")) == bool(value)
    if key == "min_differential":
        return len(ctx.get("differential") or {}) >= int(value)
    if key == "malignancy":
        return ctx.get("malignancy") in value
    if key == "age_exact":
        exact = ctx.get("age") is not None and not ctx.get("age_approximate")
        return exact == bool(value)
    raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Slot:
    bank: str  # "general" or "source"
    task: str | None = None
    types: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    description: str
    slots: tuple[Slot, ...]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected a mapping at the top level")
    return data


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PromptKit:
    """Everything a plan needs from ``templates/``: the system instruction, one context template
    per source, the question banks and one recipe, with a digest of each file used."""

    def __init__(self, recipe: str = "default", root: Path | None = None):
        self.root = root or templates_dir()
        self.env = make_env(self.root)
        self.digests: dict[str, str] = {}
        self.system = self._text("system.j2").strip()
        self.contexts = {name: self._context(name) for name in SOURCES}
        self.banks = {"general": self._bank("general", None)}
        for name in SOURCES:
            self.banks[name] = self._bank(name, name)
        self.recipe = self._recipe(recipe)
        self.version = _digest(
            "".join(f"{k}={v};" for k, v in sorted(self.digests.items())).encode()
        )[:12]

    def _file(self, rel: str) -> Path:
        path = self.root / rel
        if not path.is_file():
            raise TemplateError(f"template file not found: {path}")
        self.digests[rel] = _digest(path.read_bytes())
        return path

    def _text(self, rel: str) -> str:
        return self._file(rel).read_text(encoding="utf-8")

    def _context(self, source: str) -> jinja2.Template:
        rel = f"context/{source}.j2"
        text = self._text(rel)
        try:
            names = meta.find_undeclared_variables(self.env.parse(text))
            template = self.env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{self.root / rel}:{exc.lineno}: {exc.message}") from exc
        unknown = names - record_fields(source)
        if unknown:
            raise TemplateError(
                f"{self.root / rel}: unknown variable(s) {', '.join(sorted(unknown))}; "
                f"a {source} record has: {', '.join(sorted(record_fields(source)))}"
            )
        try:
            template.render(empty_record(source).context())
        except Exception as exc:  # noqa: BLE001 - any failure here is a template bug
            raise TemplateError(
                f"{self.root / rel}: fails on a record with no optional fields: {exc}"
            ) from exc
        return template

    def _bank(self, name: str, source: str | None) -> list[QuestionType]:
        rel = f"questions/{name}.yaml"
        path = self._file(rel)
        data = _read_yaml(path)
        allowed = frozenset(COMMON_FIELDS).union(*(record_fields(s) for s in SOURCES))
        if source is not None:
            allowed = record_fields(source)
        out: list[QuestionType] = []
        seen: set[str] = set()
        for i, raw in enumerate(data.get("types") or []):
            where = f"{path}: types[{i}]"
            try:
                qname = str(raw["name"])
                task = str(raw["task"])
                requires = tuple(raw.get("requires") or ())
                phrasings = tuple(str(p).strip() for p in raw["phrasings"])
            except (KeyError, TypeError) as exc:
                raise TemplateError(f"{where}: needs name, task and phrasings ({exc})") from exc
            where = f"{path}: type {qname!r}"
            if qname in seen:
                raise TemplateError(f"{where}: name used twice")
            seen.add(qname)
            if task not in TASKS:
                raise TemplateError(f"{where}: task must be one of {TASKS}, not {task!r}")
            bad = set(requires) - allowed
            if bad:
                raise TemplateError(f"{where}: requires unknown field(s) {sorted(bad)}")
            if not phrasings:
                raise TemplateError(f"{where}: no phrasings")
            states = tuple(str(x) for x in raw.get("states") or ())
            if set(states) - set(FACTS):
                raise TemplateError(
                    f"{where}: states unknown fact(s) {sorted(set(states) - set(FACTS))}; "
                    f"known: {', '.join(FACTS)}"
                )
            when = _conditions(raw.get("when") or {}, where)
            compiled = []
            for text in phrasings:
                try:
                    names = meta.find_undeclared_variables(self.env.parse(text))
                    compiled.append(self.env.from_string(text))
                except jinja2.TemplateSyntaxError as exc:
                    raise TemplateError(f"{where}: phrasing {text!r}: {exc.message}") from exc
                if names - QUESTION_PLACEHOLDERS:
                    raise TemplateError(
                        f"{where}: phrasing {text!r} uses {sorted(names - QUESTION_PLACEHOLDERS)}; "
                        f"questions may only use {sorted(QUESTION_PLACEHOLDERS)}"
                    )
                if names - set(requires) - {"modality"}:
                    raise TemplateError(
                        f"{where}: phrasing {text!r} uses {sorted(names - set(requires))} "
                        "without listing it in requires"
                    )
            out.append(
                QuestionType(
                    qname,
                    name,
                    task,
                    requires,
                    float(raw.get("weight", 1.0)),
                    bool(raw.get("self_instruct", False)),
                    phrasings,
                    tuple(compiled),
                    states,
                    when,
                )
            )
        if not out:
            raise TemplateError(f"{path}: no question types")
        return out

    def _recipe(self, name: str) -> Recipe:
        """The recipe ``name`` from ``recipes/``, its types checked against the banks."""
        rel = f"recipes/{name}.yaml"
        if not (self.root / rel).is_file():
            known = sorted(p.stem for p in (self.root / "recipes").glob("*.yaml"))
            raise TemplateError(f"unknown recipe {name!r}; known: {', '.join(known)}")
        data = _read_yaml(self._file(rel))
        slots = []
        for i, raw in enumerate(data.get("slots") or []):
            bank = raw.get("bank")
            task = raw.get("task")
            types = tuple(raw["types"]) if raw.get("types") else None
            if bank not in ("general", "source") or (task is not None and task not in TASKS):
                raise TemplateError(f"{self.root / rel}: slots[{i}]: bank must be general|source")
            if types:
                names = {q.name for b in self.banks.values() for q in b}
                if set(types) - names:
                    raise TemplateError(
                        f"{self.root / rel}: slots[{i}]: unknown types {sorted(set(types) - names)}"
                    )
            slots.append(Slot(bank, task, types))
        if not slots:
            raise TemplateError(f"{self.root / rel}: no slots")
        return Recipe(str(data.get("name", name)), str(data.get("description", "")), tuple(slots))

    def render_context(self, record: SourceRecord, ctx: dict[str, Any] | None = None) -> str:
        ctx = record.context() if ctx is None else ctx
        return self.contexts[record.source].render(ctx).strip()

    def candidates(self, slot: Slot, source: str) -> list[QuestionType]:
        bank = self.banks["general" if slot.bank == "general" else source]
        return [
            q
            for q in bank
            if (slot.task is None or q.task == slot.task)
            and (slot.types is None or q.name in slot.types)
        ]


def _conditions(raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """Check a ``when:`` mapping: known keys, values of the right kind."""
    if not isinstance(raw, dict) or set(raw) - set(CONDITIONS):
        raise TemplateError(f"{where}: when must map some of {CONDITIONS} to values")
    out = []
    for key, value in sorted(raw.items()):
        if key in ("labelled", "age_exact") and not isinstance(value, bool):
            raise TemplateError(f"{where}: when.{key} must be true or false")
        if key == "min_differential" and (isinstance(value, bool) or not isinstance(value, int)):
            raise TemplateError(f"{where}: when.min_differential must be a whole number")
        if key == "malignancy":
            if not isinstance(value, list) or set(value) - set(MALIGNANCY):
                raise TemplateError(f"{where}: when.malignancy must list some of {MALIGNANCY}")
            value = tuple(value)
        out.append((key, value))
    return tuple(out)
