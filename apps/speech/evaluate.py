"""Evaluate a trained speech run dir: accuracy, per-class precision/recall, confusion matrix.

    python -m apps.speech.evaluate --run-dir runs/speech                       # its own held-out test split
    python -m apps.speech.evaluate --run-dir runs/speech --split validation
    python -m apps.speech.evaluate --run-dir runs/speech \\
        --data ../shared/data/speech/speech_commands_v0.01_sample.tar.xz --split all --keywords-only
    python -m apps.speech.evaluate --run-dir runs/fsdd --data ../shared/data/speech/fsdd.tar.xz

`--data` takes a Speech Commands folder/archive or an FSDD folder/archive (detected from the
file names). Results go to `<run-dir>/eval_<name>/` (metrics.json, confusion_matrix.png)
unless `--out` says otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from apps.speech.config import SILENCE, UNKNOWN, Config
from common.config import load_config
from common.training import USER_ERRORS, report_user_error


def _keep_keywords(split, labels):
    from apps.speech.data import Split

    keep = np.asarray([labels[y] not in (SILENCE, UNKNOWN) for y in split.labels], dtype=bool)
    return Split(split.audio[keep], split.labels[keep], [s for s, k in zip(split.speakers, keep) if k],
                 [p for p, k in zip(split.paths, keep) if k])


def load_run(run_dir: str | Path):
    """(config, labels, model) of a finished run dir."""
    from common.training import load_model, open_run_dir

    import apps.speech.features  # noqa: F401  (registers the speech layers)
    import apps.speech.model  # noqa: F401

    path = open_run_dir(run_dir)
    cfg = load_config(Config, path / "config.json")
    labels_path = path / "labels.json"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path} missing: {path} was not written by apps.speech.train")
    labels = json.loads(labels_path.read_text())
    return cfg, labels, load_model(path)


def main(argv=None) -> int:

    parser = argparse.ArgumentParser(description="Evaluate a trained speech command model.")
    parser.add_argument("--run-dir", required=True, help="run dir written by apps.speech.train")
    parser.add_argument("--data", default=None,
                        help="Speech Commands or FSDD folder/archive (default: the run's own data source)")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test", "all"],
                        help="which split to score; 'all' uses every clip of --data")
    parser.add_argument("--keywords-only", action="store_true", help="drop _silence_/_unknown_ clips (score keywords only)")
    parser.add_argument("--out", default=None, help="output folder (default <run-dir>/eval_<data>_<split>)")
    args = parser.parse_args(argv)
    try:
        return _evaluate(args)
    except USER_ERRORS as err:
        return report_user_error(err)


def _evaluate(args) -> int:
    from apps.speech.data import load_data, load_eval_data
    from apps.speech.train import predict_probabilities
    from common.evaluation import classification_report, plot_confusion_matrix
    from common.training import write_json

    cfg, labels, model = load_run(args.run_dir)
    if args.data:
        split = load_eval_data(args.data, cfg.data, labels, args.split)
        name = Path(args.data).name
        for suffix in (".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip"):
            name = name[: -len(suffix)] if name.endswith(suffix) else name
    else:
        if args.split == "all":
            raise ValueError("--split all needs --data (a folder or archive to score entirely)")
        data = load_data(cfg.data, verbose=False)
        split = getattr(data, args.split)
        name = cfg.data.source.replace(":", "_")
    if args.keywords_only:
        split = _keep_keywords(split, labels)
    if len(split) == 0:
        raise ValueError(f"no clips to evaluate in split {args.split!r} of {args.data or cfg.data.source}")
    out = Path(args.out) if args.out else Path(args.run_dir) / f"eval_{name}_{args.split}{'_keywords' if args.keywords_only else ''}"
    out.mkdir(parents=True, exist_ok=True)
    probabilities = predict_probabilities(model, split.audio)
    report = classification_report(split.labels, probabilities.argmax(-1), labels)
    counts = np.bincount(split.labels, minlength=len(labels))
    report["majority_baseline_accuracy"] = float(counts.max() / counts.sum())
    report["data"] = str(args.data or cfg.data.source)
    report["split"] = args.split
    report["keywords_only"] = bool(args.keywords_only)
    write_json(out / "metrics.json", report)
    plot_confusion_matrix(report["confusion_matrix"], labels, out / "confusion_matrix.png",
                          title=f"{name} {args.split}: accuracy {report['accuracy']:.3f} (n={len(split)})")
    print(f"{name} [{args.split}] accuracy {report['accuracy']:.4f} on {len(split)} clips "
          f"(majority baseline {report['majority_baseline_accuracy']:.4f})")
    print(f"{'class':>12} {'precision':>9} {'recall':>7} {'support':>7}")
    for label, row in report["per_class"].items():
        if row["support"] or row["precision"]:
            print(f"{label:>12} {row['precision']:9.3f} {row['recall']:7.3f} {row['support']:7d}")
    print(f"Metrics: {out / 'metrics.json'}\nConfusion matrix: {out / 'confusion_matrix.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
