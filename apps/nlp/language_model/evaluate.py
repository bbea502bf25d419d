"""Perplexity of a trained language model, the state carried across the whole stream.

    python -m apps.nlp.language_model.evaluate --run-dir runs/lm                 # test split
    python -m apps.nlp.language_model.evaluate --run-dir runs/lm --split validation --batch-size 1
    python -m apps.nlp.language_model.evaluate --run-dir runs/lm --data other.txt   # any UTF-8 text

Writes `<run-dir>/eval/<name>/metrics.json`: perplexity, tokens scored, next-word top-1/top-5,
and for the run's own splits the unigram and Kneser-Ney trigram baselines on the same tokens.
"""

from __future__ import annotations

from typing import Sequence

from common.cli import evaluate_main


def main(argv: Sequence[str] | None = None) -> int:
    return evaluate_main("language_model", argv)


if __name__ == "__main__":
    raise SystemExit(main())
