"""How the engine records outcomes and counts them: response and failure rows written through
the run folder's sink (or sent to the parent from a worker), live counters, and the usage and
cost summary in ``run.json``. A base class of ``Engine``, kept apart so each file stays short."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from .backends import Call, CallResult, Usage
from .paths import templates_dir
from .pricing import cost
from .run import Failure, Response

SECRET_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "HF_TOKEN")


@dataclass(slots=True)
class Progress:
    """Live counters for the progress bar and the final summary."""

    planned: int = 0
    done_before: int = 0
    responses: int = 0
    failures: int = 0
    calls: int = 0
    transient_retries: int = 0
    content_retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0  # thought tokens included: they bill as output
    thought_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True  # False when the model has no price: the cost reads "unknown"
    started: float = field(default_factory=time.monotonic)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return self.planned - self.done_before - self.responses - self.failures


def redact(text: str) -> str:
    """Remove any secret from the environment that an error message might echo."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 6:
            text = text.replace(value, "[redacted]")
    return text


class Accounting:
    """Writing outcomes and counting them; ``Engine`` provides the state these methods read
    (folder, sink, backend, progress, profiles, options, settings, ``remote`` for workers)."""

    def write_success(
        self, call: Call, result: CallResult, attempts: int, latency: float, batch: bool = False
    ) -> None:
        """Record one response per request of the call (its answer, its share of the call's
        usage) through the sink, and count what was written."""
        rows = self.response_rows(call, result, attempts, latency, batch)
        if self.remote is not None:  # a worker process: the parent writes
            self.remote.success(rows, result.usage, result.model, batch)
            return
        written = len(self.open_sink().add_responses(rows))
        self.count_success(written, result.usage, result.model, batch)

    def response_rows(
        self, call: Call, result: CallResult, attempts: int, latency: float, batch: bool = False
    ) -> list[Response]:
        """The responses of an answered call, one per request."""
        n = len(call.requests)
        usage = result.usage
        shares = {
            "input_tokens": _split(usage.prompt_tokens, n),
            "output_tokens": _split(usage.output_tokens + usage.thoughts_tokens, n),
            "image_tokens": _split(usage.image_tokens, n),
            "thought_tokens": _split(usage.thoughts_tokens, n),  # included in output_tokens
        }
        return [
            Response(
                id=req.id,
                source=req.source,
                image_id=req.image_id,
                question_type=req.question_type,
                bank=req.bank,
                task=req.task,
                self_instruct=req.self_instruct,
                instruction=req.question,
                question=answer.question if answer.question else req.question,
                answer=answer.answer,
                model=result.model,
                backend=self.backend.name,
                finish_reason=result.finish_reason,
                call_id=call.call_id,
                call_size=n,
                attempts=attempts,
                latency_s=round(latency, 3),
                usage={k: v[i] for k, v in shares.items()},
                batch=batch,
            )
            for i, (req, answer) in enumerate(zip(call.requests, result.answers, strict=True))
        ]

    def count_success(self, written: int, usage: Usage, model: str, batch: bool = False) -> None:
        """Add a call's written responses, tokens and cost to the progress counters."""
        if not written:
            return
        p = self.progress
        p.responses += written
        p.calls += 1
        p.input_tokens += usage.prompt_tokens
        p.output_tokens += usage.output_tokens + usage.thoughts_tokens
        p.thought_tokens += usage.thoughts_tokens
        spent = cost(
            self._profile_of(model),
            usage.prompt_tokens,
            usage.output_tokens + usage.thoughts_tokens,  # thought tokens bill as output
            batch=batch,
        )
        if spent is None:
            p.cost_known = False
        else:
            p.cost += spent
        self.on_progress(p)

    def _profile_of(self, model: str):  # noqa: ANN202 - ModelProfile | None
        """The profile that bills a response by ``model`` (the served version's family, or
        the run's profile for the run's own model and for simulated answers)."""
        if model in (self.backend.model, self.priced_model) or self.backend.simulated:
            return self.profile
        return self.profiles.find(model) or self.profile

    def write_failure(self, call: Call, kind: str, reason: str, attempts: int) -> None:
        """Record one failure per request of the call, with the (redacted) reason."""
        rows = self.failure_rows(call, kind, reason, attempts)
        if self.remote is not None:  # a worker process: the parent writes
            self.remote.failure(rows, kind)
            return
        written = len(self.open_sink().add_failures(rows))
        self.count_failure(written, kind, rows[0].reason if rows else reason)

    def failure_rows(self, call: Call, kind: str, reason: str, attempts: int) -> list[Failure]:
        reason = redact(reason)
        return [
            Failure(
                id=req.id,
                source=req.source,
                image_id=req.image_id,
                question_type=req.question_type,
                task=req.task,
                kind=kind,
                reason=reason,
                attempts=attempts,
                backend=self.backend.name,
                model=self.backend.model,
            )
            for req in call.requests
        ]

    def count_failure(self, written: int, kind: str, reason: str) -> None:
        p = self.progress
        p.failures += written
        label = f"{kind}: {reason.split(':')[0]}"
        p.reasons[label] = p.reasons.get(label, 0) + written
        self.on_progress(p)

    def finish(self) -> dict[str, Any]:
        """Recount everything from the files and record usage and cost in run.json."""
        usage: dict[str, dict[str, int]] = {}
        by_tier: dict[tuple[str, bool], list[int]] = {}  # batch calls bill at half price
        calls: set[str] = set()
        responses = 0
        for row in self.folder.responses():
            responses += 1
            calls.add(row.call_id)
            total = usage.setdefault(
                row.model,
                {"input_tokens": 0, "output_tokens": 0, "image_tokens": 0, "thought_tokens": 0},
            )
            for key in total:
                total[key] += int(row.usage.get(key, 0))
            tier = by_tier.setdefault((row.model, row.batch), [0, 0])
            tier[0] += int(row.usage.get("input_tokens", 0))
            tier[1] += int(row.usage.get("output_tokens", 0))
        failures = sum(1 for _ in self.folder.failures())
        estimated: float | None = 0.0
        for (model, batch), (tokens_in, tokens_out) in by_tier.items():
            spent = cost(self._profile_of(model), tokens_in, tokens_out, batch=batch)
            estimated = None if spent is None or estimated is None else estimated + spent
        summary = {
            "backend": self.backend.name,
            "model": self.backend.model,
            "priced_as": self.priced_model,
            "options": self.options.model_dump(mode="json", exclude={"prices"}),
            "request_template": hashlib.sha256(
                (templates_dir() / "request.j2").read_bytes()
            ).hexdigest(),
            "counts": {
                "planned": self.progress.planned,
                "responses": responses,
                "failures": failures,
                "calls": len(calls),
            },
            "usage": usage,
            "model_settings": self.settings.record(),
            "estimated_cost_usd": None if estimated is None else round(estimated, 6),
            "cost": "unknown" if estimated is None else "estimated",
        }
        self.folder.update(generation=summary)
        if responses + failures >= self.progress.planned:
            self.folder.finish_step("generate", responses=responses, failures=failures)
            # every request has its outcome: the prepared images are not needed again
            # (--retry-failed prepares the few it needs once more)
            shutil.rmtree(self.run / "cache", ignore_errors=True)
        return summary


def _split(total: int, n: int) -> list[int]:
    """Split a call's usage over its n requests; the shares add up exactly."""
    base, extra = divmod(int(total), n)
    return [base + (1 if i < extra else 0) for i in range(n)]
