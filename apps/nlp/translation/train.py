"""Trains the attention encoder–decoder and scores it on the test split.

    python -m apps.nlp.translation.train --config default --run-dir runs/translate
    python -m apps.nlp.translation.train --config anki-cpu --run-dir runs/translate-anki
    python -m apps.nlp.translation.train --config tiny --run-dir /tmp/t --set data.target_lang=de

The default preset trains on the offline synthetic English→Spanish demo task. The run
dir receives run.json, config.json, source/target_tokenizer.json, model.keras (the training
model; inference models are rebuilt from its named layers), history.json/csv,
training_curves.png, data.json (split sizes), metrics.json (test BLEU/chrF + signatures) and
translations_test.tsv. The app's declarations are in app.py; common/pipeline.py runs them.

`--set train.distribution=mirrored` (TensorFlow) or `=data_parallel` (KERAS_BACKEND=jax)
trains on every local device with `train.batch_size` examples per replica; BLEU decoding
after training runs on one device (see common/distribute.py).
"""

from __future__ import annotations

from typing import Sequence

from common.cli import train_main


def main(argv: Sequence[str] | None = None) -> int:
    return train_main("translation", argv)


if __name__ == "__main__":
    raise SystemExit(main())
