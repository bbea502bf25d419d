"""Metrics, reports and plots shared by the apps' evaluate scripts.

Plots use matplotlib's Agg backend (no display needed) and are written as PNG into
the run dir, next to metrics.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """`cm[i, j]` counts examples of true class i predicted as j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro averages and the confusion matrix."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equal-length non-empty label arrays, got {y_true.shape} and {y_pred.shape}")
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    support = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = support > 0
    per_class = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, label in enumerate(labels)
    }
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "num_examples": int(y_true.size),
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def plot_confusion_matrix(cm: np.ndarray | list, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix") -> Path:
    """Row-normalised heatmap with raw counts in each cell."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(labels) <= 30:
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_history(history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, Sequence[float]]], path: str | Path,
                 title: str = "Training curves") -> Path | None:
    """One panel per metric with train and validation curves side by side.

    A sequence of histories (e.g. ensemble members) draws each one's curves in its own colour.
    """
    histories = [history] if isinstance(history, Mapping) else list(history)
    skip = {"epoch", "epoch_seconds", "learning_rate"}
    metrics = [k for k in (histories[0] if histories else {}) if not k.startswith("val_") and k not in skip]
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, key in zip(axes[0], metrics):
        for index, item in enumerate(histories):
            tag = f" {index + 1}" if len(histories) > 1 else ""
            color = f"C{(2 * index) % 10}"
            if key in item:
                ax.plot(range(1, len(item[key]) + 1), item[key], marker="o", color=color, label=f"train{tag}")
            if f"val_{key}" in item:
                ax.plot(range(1, len(item[f"val_{key}"]) + 1), item[f"val_{key}"], marker="o", linestyle="--",
                        color=f"C{(2 * index + 1) % 10}", label=f"validation{tag}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def binary_roc_auc(y_true: Sequence[int], scores: Sequence[float]) -> float:
    """ROC-AUC via the rank statistic (ties get average ranks)."""
    y_true = np.asarray(y_true, dtype=int)
    scores = np.asarray(scores, dtype=float)
    positives, negatives = (y_true == 1).sum(), (y_true == 0).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("ROC-AUC needs both classes present in y_true")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
