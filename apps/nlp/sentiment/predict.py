"""Classify raw texts with a trained sentiment run.

    python -m apps.nlp.sentiment.predict --run-dir runs/sentiment "great film" "not great at all"
    python -m apps.nlp.sentiment.predict --run-dir runs/sentiment --file reviews.txt --json

Prints `label<TAB>probability<TAB>text` per input (probability of the predicted label).
Defined behaviour on bad input: an empty or whitespace-only text is an error (exit 2); a file
that is not UTF-8 is an error naming the file and line (exit 2); texts longer than the run's
`data.max_length` tokens are classified from their first `max_length` tokens.
From Python: `load_run(dir).predict(texts)` (apps/nlp/sentiment/inference.py).
"""

from __future__ import annotations

import json
from typing import Sequence

from common.cli import predict_main
from common.errors import DataError
from common.textio import read_text_lines


def add_arguments(parser) -> None:
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--file", help="a UTF-8 text file with one text per line (empty lines are skipped)")


def run_command(run, args) -> int:
    from apps.nlp.sentiment.inference import predict_texts

    texts = list(args.texts)
    if args.file:
        texts += [line for line in read_text_lines(args.file, "--file") if line.strip()]
    if not texts:
        raise DataError("nothing to classify: pass texts as arguments or --file PATH")
    # Command-line arguments with invalid UTF-8 arrive as surrogate escapes; their bytes are refused by name.
    texts = [t.encode("utf-8", errors="surrogateescape") if any("\udc80" <= c <= "\udcff" for c in t) else t
             for t in texts]
    for result in predict_texts(run, texts):
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(f"{result['label']}\t{result['probability']:.4f}\t{result['text'][:200]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return predict_main("sentiment", argv)


if __name__ == "__main__":
    raise SystemExit(main())
