"""Fake answers for structured output: a value that fits a Gemini or JSON Schema."""

from __future__ import annotations

from typing import Any

from tests.support.scripted import sentence

FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "email": "fake@example.com",
    "uri": "https://example.com/fake",
}


class SchemaFaker:
    """Generate a value that conforms to a Gemini Schema or a standard JSON Schema."""

    def __init__(self, root: dict[str, Any], lines: dict[str, str], words: int) -> None:
        self.root, self.lines, self.words = root, lines, words

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            node: Any = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema, seen = node, seen + 1
        return schema

    def value(
        self, schema: Any, name: str = "answer", line: str | None = None, depth: int = 0
    ) -> Any:
        if not isinstance(schema, dict) or depth > 12:
            return None
        schema = self._resolve(schema)
        for key in ("anyOf", "oneOf", "allOf", "any_of"):
            options = [o for o in schema.get(key) or [] if self._type(self._resolve(o)) != "null"]
            if options:
                return self.value(options[0], name, line, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        line = self.lines.get(name.lower(), line)
        kind = self._type(schema)
        if kind == "object":
            props: dict[str, Any] = schema.get("properties") or {}
            order = schema.get("propertyOrdering") or schema.get("property_ordering") or []
            keys = [k for k in order if k in props] + [k for k in props if k not in order]
            out = {k: self.value(props[k], k, line, depth + 1) for k in keys}
            extra = schema.get("additionalProperties")
            if not props and isinstance(extra, dict):
                out[f"{name}_key"] = self.value(extra, name, line, depth + 1)
            return out
        if kind == "array":
            lo = int(schema.get("minItems", schema.get("min_items", 0)))
            hi = schema.get("maxItems", schema.get("max_items"))
            n = max(lo, 1) if hi is None else min(max(lo, 1), int(hi))
            head = [self.value(s, name, line, depth + 1) for s in schema.get("prefixItems", [])]
            item = schema.get("items") or {"type": "string"}
            return head + [self.value(item, name, line, depth + 1) for _ in range(n - len(head))]
        if kind in ("integer", "number"):
            lo, hi = schema.get("minimum"), schema.get("maximum")
            num = 1.0 if lo is None else max(1.0, float(lo))
            num = num if hi is None else min(num, float(hi))
            return int(num) if kind == "integer" else num
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name, line)

    def _string(self, schema: dict[str, Any], name: str, line: str | None) -> str:
        if schema.get("format") in FORMATS:  # so pydantic datetime/UUID fields still parse
            return FORMATS[schema["format"]]
        text = sentence(name, line, self.words)
        lo = int(schema.get("minLength", schema.get("min_length", 0)))
        hi = schema.get("maxLength", schema.get("max_length"))
        text = text.ljust(lo, "x")
        return text[: int(hi)] if hi is not None else text

    @staticmethod
    def _type(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if str(k).lower() != "null"), "null")
        if kind and str(kind).upper() != "TYPE_UNSPECIFIED":
            return str(kind).lower()
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"
