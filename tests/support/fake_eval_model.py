"""An OpenAI-compatible fake that always picks the first option of a multiple-choice question.

It answers every question of a call with "A", through the real ``openai`` backend and the
engine, so the eval harness must score exactly the share of items whose answer is option A.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.fake_openai import FakeOpenAI

_KEY = re.compile(r"^\s*(q\d+)\s*:", re.M)


class FirstOptionModel(FakeOpenAI):
    """Every answer is the letter of the first option ("A"), or of ``answer``."""

    def __init__(self, *, answer: str = "A", plain: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.answer = answer
        self.plain = plain  # answer the bare letter, ignoring the JSON schema asked for

    def _answer_text(self, response_format: Any, prompt: str) -> str:
        if self.plain:
            return self.answer
        keys = list(dict.fromkeys(_KEY.findall(prompt))) or ["q1"]
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict) and schema.get("properties"):
            keys = list(schema["properties"])
        return json.dumps({key: {"answer": self.answer} for key in keys})
