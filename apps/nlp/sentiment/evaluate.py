"""Evaluate a trained sentiment run: accuracy, F1, ROC-AUC, confusion matrix, worst mistakes.

    python -m apps.nlp.sentiment.evaluate --run-dir runs/sentiment [--split test] [--set data.test_path=...]

Reads only the run dir (config.json, model.keras, vocabulary.txt, labels.json) and the data
the config names (`--set data.*` evaluates on other files, e.g. another TSV). Writes
`eval_<split>.json` and `confusion_<split>.png` into the run dir.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.sentiment import features
from apps.nlp.sentiment.config import Config
from apps.nlp.sentiment.data import encode_labels, load_dataset
from apps.nlp.sentiment.model import class_probabilities
from common.config import apply_overrides, load_config
from common.evaluation import binary_roc_auc, classification_report, plot_confusion_matrix
from common.training import load_model, open_run_dir, report_user_error, RunDirError, USER_ERRORS, write_json


def predict_ids(model, ids: np.ndarray, batch_size: int = 256, multiple: int = 16) -> np.ndarray:
    """`[n, num_classes]` probabilities, batching similar lengths together (order preserved)."""
    if len(ids) == 0:
        return np.zeros((0, model.output_shape[-1] if model.output_shape[-1] > 1 else 2), dtype=np.float32)
    order = np.argsort(features.sequence_lengths(ids), kind="stable")
    probabilities = None
    for start in range(0, len(ids), batch_size):
        index = order[start:start + batch_size]
        # predict_on_batch runs the traced/compiled graph; an eager call steps the RNN op by op.
        out = class_probabilities(model.predict_on_batch(features.trim_padding(ids[index], multiple)))
        if probabilities is None:
            probabilities = np.zeros((len(ids), out.shape[1]), dtype=np.float32)
        probabilities[index] = out
    return probabilities


def worst_mistakes(texts: Sequence[str], y_true: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str],
                   count: int = 10, max_chars: int = 300) -> list[dict]:
    """The misclassified examples the model was most confident about."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:count]
    return [
        {"text": texts[i][:max_chars] + ("…" if len(texts[i]) > max_chars else ""),
         "true": label_names[y_true[i]], "predicted": label_names[predicted[i]],
         "confidence": float(probabilities[i, predicted[i]])}
        for i in wrong
    ]


def evaluate_split(model, ids: np.ndarray, y_true: np.ndarray, texts: Sequence[str], label_names: Sequence[str],
                   out_dir: Path | None = None, split: str = "test", multiple: int = 16) -> dict:
    """Metrics of one split; writes `confusion_<split>.png` when `out_dir` is given."""
    probabilities = predict_ids(model, ids, multiple=multiple)
    report = classification_report(y_true, probabilities.argmax(axis=1), label_names)
    if len(label_names) == 2 and len(set(y_true.tolist())) == 2:
        report["roc_auc"] = binary_roc_auc(y_true, probabilities[:, 1])
    report["worst_misclassified"] = worst_mistakes(texts, y_true, probabilities, label_names)
    if out_dir is not None:
        plot_confusion_matrix(report["confusion_matrix"], label_names, Path(out_dir) / f"confusion_{split}.png",
                              title=f"Confusion matrix ({split})")
    return report


def load_run(run_dir: str | Path, overrides: Sequence[str] = ()) -> tuple[Path, Config, list[str], list[str]]:
    """Run dir path, its config (with `--set` overrides), vocabulary and label names."""
    path = open_run_dir(run_dir)
    cfg = apply_overrides(load_config(Config, path / "config.json"), overrides)
    vocabulary = features.load_vocabulary(path / "vocabulary.txt")
    labels_file = path / "labels.json"
    if not labels_file.is_file():
        raise RunDirError(f"{path} has no labels.json: it is not a finished sentiment run dir")
    return path, cfg, vocabulary, json.loads(labels_file.read_text())["label_names"]


def print_report(split: str, report: dict, show_mistakes: int = 5) -> None:
    line = f"{split}: accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}"
    if "roc_auc" in report:
        line += f"  ROC-AUC {report['roc_auc']:.4f}"
    print(line + f"  (n={report['num_examples']})")
    for mistake in report["worst_misclassified"][:show_mistakes]:
        print(f"  wrong ({mistake['true']} → {mistake['predicted']} @ {mistake['confidence']:.2f}): {mistake['text'][:120]!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a trained sentiment run dir")
    parser.add_argument("--run-dir", required=True, help="a run dir written by apps.nlp.sentiment.train")
    parser.add_argument("--split", default="", help="evaluation split (default: the source's reported one, e.g. test or dev)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override data settings, e.g. --set data.test_path=other.tsv")
    args = parser.parse_args(argv)
    try:
        path, cfg, vocabulary, label_names = load_run(args.run_dir, args.set)
        dataset = load_dataset(cfg.data, seed=cfg.train.seed, label_names=label_names)
        split = args.split or dataset.primary_split
        splits = {**dataset.evaluation, "validation": dataset.validation}
        if split not in splits:
            raise ValueError(f"unknown split {split!r}; this source has {sorted(splits)}")
        data = splits[split]
        y_true = encode_labels(data.labels, label_names, split)
        from apps.nlp.sentiment import model as _model  # noqa: F401  (registers the custom layers)

        classifier = load_model(path)
        ids = features.vectorize(data.texts, features.vectorizer_from_vocabulary(vocabulary, cfg.data.max_length))
        report = evaluate_split(classifier, ids, y_true, data.texts, label_names, path, split, cfg.data.bucket_multiple)
    except USER_ERRORS as err:
        return report_user_error(err)
    write_json(path / f"eval_{split}.json", report)
    print_report(split, report, show_mistakes=10)
    print(f"Wrote {path / f'eval_{split}.json'} and {path / f'confusion_{split}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
