"""Train the sentiment classifier and write a run dir.

    python -m apps.nlp.sentiment.train --config default --run-dir runs/sentiment      # offline synthetic task
    python -m apps.nlp.sentiment.train --config sst2 --run-dir runs/sst2
    python -m apps.nlp.sentiment.train --config imdb --run-dir runs/imdb --set data.max_length=400
    python -m apps.nlp.sentiment.train --config default --run-dir runs/csv \
        --set data.source=table --set data.path=reviews.csv --set data.text_column=review --set data.label_column=stars

The run dir holds run.json, config.json, model.keras (token ids → probabilities), vocabulary.txt,
labels.json, history.json/csv, metrics.json (every evaluation split plus a bag-of-words
baseline on the same tokens), training_curves.png and confusion_<split>.png. The app's
declarations are in app.py; common/pipeline.py runs them.

`--set train.distribution=mirrored` (TensorFlow) or `=data_parallel` (KERAS_BACKEND=jax)
trains on every local device with `train.batch_size` examples per replica; the evaluation
after training runs on one device (see common/distribute.py).
"""

from __future__ import annotations

from typing import Sequence

from common.cli import train_main


def main(argv: Sequence[str] | None = None) -> int:
    return train_main("sentiment", argv)


if __name__ == "__main__":
    raise SystemExit(main())
