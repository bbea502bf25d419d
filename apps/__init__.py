"""The suite's applications, each a folder of declarations for the one pipeline in `common.pipeline`.

    from common.pipeline import load_run, train
    run = train("speech", "tiny", "runs/speech-tiny")      # or a Config object
    run.predict(waveforms)                                  # a [clips, samples] array, or WAV paths

`APPS` maps each app's name to the module holding its `APP` spec.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow start-up lines (see common/__init__.py)
import common  # noqa: E402,F401  (imports TensorFlow with its C++ start-up lines filtered out)

APPS = {
    "speech": "apps.speech.app",
    "sentiment": "apps.nlp.sentiment.app",
    "translation": "apps.nlp.translation.app",
    "forecasting": "apps.timeseries.app",
    "language_model": "apps.nlp.language_model.app",
}
ALIASES = {"timeseries": "forecasting", "forecast": "forecasting", "translate": "translation", "lm": "language_model"}
