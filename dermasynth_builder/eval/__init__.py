"""Evaluation: a seeded closed-form benchmark from a run's held-out labelled images, answered by
any backend through the generate engine, and scored against the labels."""

from .bench import Item, benchmark_records, label_spaces
from .compare import compare_rows, load_report
from .folder import KEY, SYSTEM, BenchmarkOptions, EvalError, plan_eval
from .runner import run_eval, score_folder
from .score import macro_f1, parse_choice

__all__ = [
    "KEY",
    "SYSTEM",
    "BenchmarkOptions",
    "EvalError",
    "Item",
    "benchmark_records",
    "compare_rows",
    "label_spaces",
    "load_report",
    "macro_f1",
    "parse_choice",
    "plan_eval",
    "run_eval",
    "score_folder",
]
