"""Export a trained sentiment run: raw strings → probabilities, with parity checks.

    python -m apps.nlp.sentiment.export --run-dir runs/sentiment [--out DIR] [--formats saved_model,onnx,tflite]

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
Each format's parity against the Keras model is written to `parity.json` (max |diff| ≤ 1e-4).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from apps.nlp.sentiment import features
from apps.nlp.sentiment.evaluate import load_run
from common.export import ExportError, export_all
from common.training import load_model, report_user_error, USER_ERRORS, write_json

SAMPLE_TEXTS = [
    "great film",
    "the plot was not good but the acting was wonderful",
    "",
    "i did not find the ending very good , although the cast was brilliant !",
    "caf\u00e9 \u00e9cole na\u00efve \u2014 bizarre unicode \ufffd text",
    "long " * 2000 + "review",
]


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, formats: Sequence[str] = ("saved_model", "onnx")) -> dict:
    if keras.backend.backend() != "tensorflow":
        raise ValueError("export needs the TensorFlow backend: rerun with KERAS_BACKEND=tensorflow")
    from apps.nlp.sentiment import model as _model  # noqa: F401  (registers the custom layers)

    path, cfg, vocabulary, label_names = load_run(run_dir)
    classifier = load_model(path)
    out = Path(out_dir) if out_dir else path / "export"
    out.mkdir(parents=True, exist_ok=True)
    text_model = features.build_text_model(classifier, vocabulary, cfg.data.max_length)
    samples = np.asarray(SAMPLE_TEXTS, dtype=object)
    report: dict = {"label_names": label_names, "max_length": cfg.data.max_length}
    text_formats = ["keras"] + [f for f in formats if f in ("saved_model", "tflite")]
    report["text"] = export_all(text_model, out / "text", [samples], formats=text_formats,
                                tflite_select_tf_ops=True)
    if "onnx" in formats:
        ids = features.vectorize(SAMPLE_TEXTS, features.vectorizer_from_vocabulary(vocabulary, cfg.data.max_length))
        try:
            report["token_ids"] = export_all(classifier, out / "token_ids", [ids], formats=("onnx",))
            shutil.copy(path / "vocabulary.txt", out / "token_ids" / "vocabulary.txt")
        except Exception as err:  # tf2onnx raises many private error types; record and go on.
            report["token_ids"] = {"onnx": f"not exported: {type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            print(f"warning: ONNX export failed: {report['token_ids']['onnx']}", file=sys.stderr)
    write_json(out / "export_report.json", report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a trained sentiment run (string → probability)")
    parser.add_argument("--run-dir", required=True, help="a run dir written by apps.nlp.sentiment.train")
    parser.add_argument("--out", help="output folder (default <run-dir>/export)")
    parser.add_argument("--formats", default="saved_model,onnx",
                        help="comma-separated subset of saved_model,onnx,tflite (model.keras is always written)")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    try:
        unknown = set(formats) - {"saved_model", "onnx", "tflite"}
        if unknown:
            raise ValueError(f"unknown format(s) {sorted(unknown)}; choose from saved_model, onnx, tflite")
        report = export_run(args.run_dir, args.out, formats)
    except (*USER_ERRORS, ExportError) as err:
        return report_user_error(err)
    for group in ("text", "token_ids"):
        for fmt, info in report.get(group, {}).get("formats", {}).items():
            diff = info.get("max_abs_diff")
            print(f"{group}/{fmt}: {info['path']}  parity max|diff| = {diff if diff is None else f'{diff:.2e}'}")
        if "onnx" in report.get(group, {}):
            print(f"{group}/onnx: {report[group]['onnx']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
