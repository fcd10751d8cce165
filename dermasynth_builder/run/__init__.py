"""The run folder as a typed contract: its rows (``schema``), its owner (``RunFolder``), the
lock, the plan fingerprint and the exactly-once result sink."""

from .fingerprint import plan_fingerprint, template_digests, what_changed
from .folder import (
    FAILURES,
    HELDOUT,
    JUDGEMENTS,
    PAIRS,
    RECORDS,
    REJECTED,
    REQUESTS,
    RESPONSES,
    RUN_JSON,
    SKIPPED,
    STEPS,
    RunFolder,
)
from .jsonl import RunFolderError, dumps, iter_jsonl, write_json_atomic, write_jsonl_atomic
from .lock import RunLockedError
from .schema import (
    Failure,
    Judgement,
    Pair,
    Rejected,
    Request,
    Response,
    SchemaError,
    SourceRecord,
)
from .sink import ResultSink

__all__ = [
    "FAILURES",
    "HELDOUT",
    "JUDGEMENTS",
    "PAIRS",
    "RECORDS",
    "REJECTED",
    "REQUESTS",
    "RESPONSES",
    "RUN_JSON",
    "SKIPPED",
    "STEPS",
    "Failure",
    "Judgement",
    "Pair",
    "Rejected",
    "Request",
    "Response",
    "ResultSink",
    "RunFolder",
    "RunFolderError",
    "RunLockedError",
    "SchemaError",
    "SourceRecord",
    "dumps",
    "iter_jsonl",
    "plan_fingerprint",
    "template_digests",
    "what_changed",
    "write_json_atomic",
    "write_jsonl_atomic",
]
