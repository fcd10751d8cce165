"""Import the published DermaSynth text pairs into a run folder, joined to their source images.

The release (Hub Parquet, the repo's JSON) is text only and its exact schema is undocumented, so
fields are found by name patterns, not a fixed schema. Every pair either lands in the run folder
(records, requests, responses, as ``plan`` and ``generate`` write them, so ``curate`` and
``package`` take it unchanged) or in unmatched.jsonl with a reason; none is dropped silently.

``read`` loads the file into flat records, ``pairs`` finds the pairs in each record, ``match``
looks up each pair's image and writes the run folder.
"""

from .match import (
    BAD_RECORD,
    DUPLICATE,
    NO_IMAGE,
    NOT_GIVEN,
    UNMATCHED,
    ImageIndex,
    ImportSummary,
    Reader,
    import_pairs,
    infer_source,
    names,
    resolve,
    sha256_file,
)
from .pairs import (
    DEFAULT_MODEL,
    Candidate,
    Layout,
    Slot,
    analyse,
    clean_question,
    extract,
    flatten,
    id_text,
    parse_answer,
    text_of,
)
from .read import (
    ImportInputError,
    Loaded,
    dataset_source,
    load,
    looks_like_record,
    norm,
    plain,
    walk,
)

__all__ = [
    "BAD_RECORD",
    "DEFAULT_MODEL",
    "DUPLICATE",
    "NO_IMAGE",
    "NOT_GIVEN",
    "UNMATCHED",
    "Candidate",
    "ImageIndex",
    "ImportInputError",
    "ImportSummary",
    "Layout",
    "Loaded",
    "Reader",
    "Slot",
    "analyse",
    "clean_question",
    "dataset_source",
    "extract",
    "flatten",
    "id_text",
    "import_pairs",
    "infer_source",
    "load",
    "looks_like_record",
    "names",
    "norm",
    "parse_answer",
    "plain",
    "resolve",
    "sha256_file",
    "text_of",
    "walk",
]
