"""Train a keyword-spotting model and write a run dir (config, model, history, metrics, plots).

    python -m apps.speech.train --config default --run-dir runs/speech            # offline synthetic data
    python -m apps.speech.train --config fsdd --run-dir runs/fsdd                 # real spoken digits
    python -m apps.speech.train --config default --set model.architecture=streaming --run-dir runs/speech_stream
    python -m apps.speech.train --config default --set data.source=folder --set data.path=~/speech_commands --run-dir runs/sc
    python -m apps.speech.train --help                                           # every preset and --set key

The run dir holds `run.json` (app, versions, commit), `config.json`, `labels.json` (class order),
`data.json` (split sizes), `model.keras` (raw audio in; the feature normalisation is inside),
`history.json/csv`, `metrics.json` (held-out test accuracy, per-class precision/recall),
`training_curves.png` and `confusion_matrix.png`. The app's declarations are in app.py; the
pipeline that runs them is common/pipeline.py.
"""

from __future__ import annotations

from common.cli import train_main


def main(argv=None) -> int:
    return train_main("speech", argv)


if __name__ == "__main__":
    raise SystemExit(main())
