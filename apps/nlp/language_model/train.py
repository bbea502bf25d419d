"""Trains the word-level language model and scores it on validation and test.

    python -m apps.nlp.language_model.train --config default --run-dir runs/lm      # WikiText-2, ~12 min (JAX)
    python -m apps.nlp.language_model.train --config tiny --run-dir /tmp/lm         # generated corpus, seconds
    python -m apps.nlp.language_model.train --config default --set data.source=text:my_book.txt --run-dir runs/book

The run dir receives run.json, config.json, vocabulary.txt, model.keras (the training model:
its `language_model` layer holds every weight, the carried state rides along), history.json,
training_curves.png, perplexity.png, data.json, metrics.json (validation/test perplexity with
the state carried, top-1/top-5, unigram and Kneser-Ney baselines, tokens/s) and samples.txt.
The app's declarations are in app.py; common/pipeline.py runs them.
"""

from __future__ import annotations

from typing import Sequence

from common.cli import train_main


def main(argv: Sequence[str] | None = None) -> int:
    return train_main("language_model", argv)


if __name__ == "__main__":
    raise SystemExit(main())
