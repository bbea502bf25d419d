"""Evaluate a trained sentiment run: accuracy, F1, ROC-AUC, confusion matrix, worst mistakes.

    python -m apps.nlp.sentiment.evaluate --run-dir runs/sentiment [--split test] [--set data.test_path=...]

Reads only the run dir (config.json, model.keras, vocabulary.txt, labels.json) and the data
the config names (`--set data.*` evaluates on other files, e.g. another TSV). Writes
`<run-dir>/eval/<split>/metrics.json` and `confusion_<split>.png` there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.sentiment.inference import predict_ids
from common.cli import evaluate_main
from common.evaluation import binary_roc_auc, classification_report, plot_confusion_matrix


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


def print_report(split: str, report: dict, show_mistakes: int = 5) -> None:
    line = f"{split}: accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}"
    if "roc_auc" in report:
        line += f"  ROC-AUC {report['roc_auc']:.4f}"
    print(line + f"  (n={report['num_examples']})")
    for mistake in report["worst_misclassified"][:show_mistakes]:
        print(f"  wrong ({mistake['true']} → {mistake['predicted']} @ {mistake['confidence']:.2f}): {mistake['text'][:120]!r}")


def main(argv: Sequence[str] | None = None) -> int:
    return evaluate_main("sentiment", argv)


if __name__ == "__main__":
    raise SystemExit(main())
