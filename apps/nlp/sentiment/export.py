"""Export a trained sentiment run: raw strings → probabilities, with parity checks.

    python -m apps.nlp.sentiment.export --run-dir runs/sentiment [--out DIR] [--formats keras saved_model onnx tflite]

Writes under `<run-dir>/export/` (TensorFlow backend):
- `text/model.keras` and `text/saved_model/`: the string-input model (TextVectorization
  with the run's vocabulary + classifier); serving signature `serve(text: string[batch])`
  → probabilities `[batch, 1]` (P(positive)) or `[batch, N]`.
- `token_ids/model.onnx` + `vocabulary.txt`: ONNX of the classifier on int32 token ids.
  ONNX has no portable string ops for TextVectorization's regex standardization, so the
  ONNX graph starts after tokenization (lower-case, strip punctuation, split, look up
  `vocabulary.txt`, 1 for unknown words, pad with 0).
- optional `text/model.tflite` (needs SELECT_TF_OPS for strings and the dynamic RNN;
  parity is recorded as not checked where the TFLite interpreter lacks the Flex delegate).
Each format's parity against the Keras model is written to `parity.json` (max |diff| ≤ 1e-4) in its
folder, and the whole report to `export.json`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.sentiment import features
from common.cli import export_main
from common.export import export_all

SAMPLE_TEXTS = [
    "great film",
    "the plot was not good but the acting was wonderful",
    "",
    "i did not find the ending very good , although the cast was brilliant !",
    "caf\u00e9 \u00e9cole na\u00efve \u2014 bizarre unicode \ufffd text",
    "long " * 2000 + "review",
]


def export_run(run, out: Path, formats: Sequence[str] = ("keras", "saved_model", "onnx")) -> dict:
    """The string-input model (keras/saved_model/tflite) and the token-id ONNX model, parity-checked."""
    cfg, vocabulary, label_names = run.cfg, run.state["vocabulary"], run.state["label_names"]
    classifier = run.model
    text_model = features.build_text_model(classifier, vocabulary, cfg.data.max_length)
    samples = np.asarray(SAMPLE_TEXTS, dtype=object)
    report: dict = {"label_names": label_names, "max_length": cfg.data.max_length}
    text_formats = ["keras"] + [f for f in formats if f in ("saved_model", "tflite")]
    report["text"] = export_all(text_model, out / "text", [samples], formats=text_formats,
                                tflite_select_tf_ops=True)
    if "onnx" in formats:
        ids = features.vectorize(SAMPLE_TEXTS, run.state["vectorizer"])
        try:
            report["token_ids"] = export_all(classifier, out / "token_ids", [ids], formats=("onnx",))
            shutil.copy(run.path / "vocabulary.txt", out / "token_ids" / "vocabulary.txt")
        except Exception as err:  # tf2onnx raises many private error types; record and go on.
            report["token_ids"] = {"onnx": f"not exported: {type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            print(f"warning: ONNX export failed: {report['token_ids']['onnx']}", file=sys.stderr)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return export_main("sentiment", argv)


if __name__ == "__main__":
    raise SystemExit(main())
