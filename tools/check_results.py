"""Checks the results ledger: every line of docs/results.jsonl is one well-formed result.

    python tools/check_results.py                    # docs/results.jsonl
    python tools/check_results.py other.jsonl ...

One JSON object per line with exactly these keys (docs/results.md holds the prose and the tables;
the ledger holds the same numbers, one per line, so they can be grouped and compared):

    app      speech | sentiment | translation | forecasting | language_model | experiments | bench
    dataset  what was scored, e.g. speech_commands_v0.01_sample, ETTh1, sst2
    split    e.g. test, dev, core_words, or null (a benchmark)
    metric   a plain name: accuracy, mse, bleu, recall, seq_per_s, ...
    value    a finite number; fractions as 0.72, not 72 (%)
    seed     the training seed, or null when unknown
    setting  the preset and overrides, so runs differing only in seed group together
    command  the command that produced it, or null when the source gives none
    machine  e.g. "CPU 2 cores", "H200"
    date     YYYY-MM-DD when the source gives one, else null

Optional integer keys where the issue asks for them: `length` (sequence length T, experiments),
`horizon` and `input_length` (forecasting).

Exits 0 when every line passes, 1 (listing `file:line: problem`) otherwise.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import sys
from pathlib import Path
from typing import Sequence

KEYS = ("app", "dataset", "split", "metric", "value", "seed", "setting", "command", "machine", "date")
OPTIONAL_INT_KEYS = ("length", "horizon", "input_length")
APPS = ("speech", "sentiment", "translation", "forecasting", "language_model", "experiments", "bench")
METRIC_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")
# Metrics that are fractions: a value above 1 is a percentage written by mistake.
FRACTIONS = ("accuracy", "macro_f1", "roc_auc", "recall", "precision", "bag_of_words_accuracy", "token_accuracy",
             "interval_coverage", "fraction_within_0.04")
DEFAULT = Path(__file__).resolve().parent.parent / "docs" / "results.jsonl"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_line(text: str) -> list[str]:
    """The problems with one ledger line (an empty list when it is fine)."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        return [f"not JSON ({err.msg})"]
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    problems = []
    missing = [k for k in KEYS if k not in row]
    extra = sorted(set(row) - set(KEYS) - set(OPTIONAL_INT_KEYS))
    for key in OPTIONAL_INT_KEYS:
        if key in row and not (isinstance(row[key], int) and not isinstance(row[key], bool) and row[key] >= 1):
            problems.append(f"{key} must be a positive integer, got {row[key]!r}")
    if missing:
        problems.append(f"missing key(s) {missing}")
    if extra:
        problems.append(f"unknown key(s) {extra}; the keys are {list(KEYS)} (optional: {list(OPTIONAL_INT_KEYS)})")
    if "app" in row and row["app"] not in APPS:
        problems.append(f"app {row['app']!r} is not one of {', '.join(APPS)}")
    for key in ("dataset", "setting", "machine"):
        if key in row and not (isinstance(row[key], str) and row[key].strip()):
            problems.append(f"{key} must be a non-empty string, got {row[key]!r}")
    for key in ("split", "command"):
        if key in row and row[key] is not None and not (isinstance(row[key], str) and row[key].strip()):
            problems.append(f"{key} must be a non-empty string or null, got {row[key]!r}")
    metric = row.get("metric")
    if "metric" in row and not (isinstance(metric, str) and METRIC_NAME.match(metric)):
        problems.append(f"metric must be a plain lower-case name (e.g. accuracy, mse, seq_per_s), got {metric!r}")
    if "value" in row:
        value = row["value"]
        if not _is_number(value) or not math.isfinite(value):
            problems.append(f"value must be a finite number, got {value!r}")
        elif metric in FRACTIONS and not 0 <= value <= 1:
            problems.append(f"{metric} is a fraction in [0, 1], got {value} (write 0.72, not 72)")
    if "seed" in row and row["seed"] is not None and not (isinstance(row["seed"], int) and not isinstance(row["seed"], bool)):
        problems.append(f"seed must be an integer or null, got {row['seed']!r}")
    date = row.get("date")
    if date is not None:
        try:
            ok = isinstance(date, str) and datetime.date.fromisoformat(date).isoformat() == date
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"date must be YYYY-MM-DD or null, got {date!r}")
    return problems


def check_file(path: Path) -> list[str]:
    """`file:line: problem` for every bad line of a ledger file."""
    if not path.is_file():
        return [f"{path}: not found"]
    problems = []
    lines = path.read_text(encoding="utf-8").splitlines()
    if not any(line.strip() for line in lines):
        return [f"{path}: no results in it"]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            problems.append(f"{path}:{number}: empty line (one JSON object per line)")
            continue
        problems.extend(f"{path}:{number}: {problem}" for problem in check_line(line))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)] or [DEFAULT]
    problems = [problem for path in paths for problem in check_file(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    for path in paths:
        print(f"{path}: {sum(1 for line in path.read_text(encoding='utf-8').splitlines() if line.strip())} results, all well formed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
