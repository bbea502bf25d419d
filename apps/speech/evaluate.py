"""Evaluate a trained speech run dir: accuracy, per-class precision/recall, confusion matrix.

    python -m apps.speech.evaluate --run-dir runs/speech                       # its own held-out test split
    python -m apps.speech.evaluate --run-dir runs/speech --split validation
    python -m apps.speech.evaluate --run-dir runs/speech \\
        --data ../shared/data/speech/speech_commands_v0.01_sample.tar.xz --split all --keywords-only
    python -m apps.speech.evaluate --run-dir runs/fsdd --data ../shared/data/speech/fsdd.tar.xz

`--data` takes a Speech Commands folder/archive or an FSDD folder/archive (detected from the
file names). Results go to `<run-dir>/eval_<name>/` (metrics.json, confusion_matrix.png)
unless `--out` says otherwise.

`--spotting` also joins the clips (all but `_silence_`; `_unknown_` words stay as distractors)
into streams of 10 with random pauses and spots keywords in them with a sliding window
(apps/speech/spotting.py): recall, false alarms per minute and a plot of one stream.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument("--spotting", action="store_true",
                        help="also spot keywords in streams made of the clips (recall, false alarms per minute)")
    parser.add_argument("--threshold", type=float, default=0.6, help="--spotting: keyword probability that counts")
    parser.add_argument("--step-model", type=int, default=0, metavar="PHASES",
                        help="--spotting with a streaming run: its step model with PHASES staggered states, each "
                             "reset once per clip, instead of the sliding window (see predict --help)")
    parser.add_argument("--live", action="store_true",
                        help="--spotting with a streaming run: one step-model state run on and on, never reset")
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

    from apps.speech.spotting import spot_settings

    # Spotting flags are checked before anything is scored or written.
    settings = spot_settings(args.threshold, step_phases=args.step_model, live=args.live) if args.spotting else None
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
    if args.spotting:
        report["spotting"] = _spotting(model, split, labels, cfg, out, settings, args.step_model, args.live)
        write_json(out / "metrics.json", report)
    print(f"Metrics: {out / 'metrics.json'}\nConfusion matrix: {out / 'confusion_matrix.png'}")
    return 0


def _spotting(model, split, labels, cfg, out: Path, settings, step_phases: int = 0, live: bool = False) -> dict:
    """Keyword spotting on streams made of the split's clips; prints and returns the totals."""
    from apps.speech.spotting import check_spottable, detect, make_streams, posteriors, score_detections

    check_spottable(labels)
    keep = np.asarray([labels[y] != SILENCE for y in split.labels], dtype=bool)
    if not np.any([labels[y] not in (SILENCE, UNKNOWN) for y in split.labels]):
        raise ValueError("--spotting needs keyword clips in the evaluated split")
    rate = cfg.data.sample_rate
    clip_samples = int(round(rate * cfg.data.clip_seconds))
    streams = make_streams(split.audio[keep], split.labels[keep], labels, rate)
    per_stream = [posteriors(model, audio, rate, clip_samples, settings, step_phases, cfg.model.streaming_chunk_frames,
                             live) for audio, _ in streams]
    minutes = sum(len(audio) for audio, _ in streams) / rate / 60

    def score(spot) -> dict:
        totals: dict = {}
        for (times, probabilities), (_, truth) in zip(per_stream, streams):
            for key, value in score_detections(detect(times, probabilities, labels, spot), truth).items():
                totals[key] = totals.get(key, 0) + value
        return {**totals, "recall": totals["hits"] / max(1, totals["keywords"]),
                "precision": totals["hits"] / max(1, totals["detections"]),
                "false_alarms_per_minute": totals["false_alarms"] / minutes}

    totals = score(settings)
    # The trade-off over thresholds, from the same posteriors (a DET-style curve).
    curve = [{"threshold": t, **score(dataclasses.replace(settings, threshold=t))}
             for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]
    times, probabilities = per_stream[0]
    _plot_stream(times, probabilities, labels, streams[0][1], detect(times, probabilities, labels, settings),
                 out / "spotting.png")
    _plot_curve(curve, settings.threshold, out / "spotting_curve.png")
    result = {**totals, "streams": len(streams), "minutes": minutes, "settings": dataclasses.asdict(settings),
              "step_model_phases": step_phases, "live": live, "curve": curve}
    print(f"spotting: {totals['hits']}/{totals['keywords']} keywords found (recall {result['recall']:.3f}), "
          f"{totals['false_alarms']} false alarms ({result['false_alarms_per_minute']:.2f}/min, "
          f"{totals['wrong_label']} inside another word's clip) in {len(streams)} streams, {minutes:.1f} min; "
          f"plots {out / 'spotting.png'}, {out / 'spotting_curve.png'}")
    for point in curve:
        print(f"  threshold {point['threshold']:.1f}: recall {point['recall']:.3f}, "
              f"{point['false_alarms_per_minute']:.2f} false alarms/min")
    return result


def _plot_curve(curve: list[dict], chosen: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([p["false_alarms_per_minute"] for p in curve], [p["recall"] for p in curve], "o-")
    for p in curve:
        ax.annotate(f"{p['threshold']:.1f}", (p["false_alarms_per_minute"], p["recall"]), fontsize=8,
                    xytext=(4, -10), textcoords="offset points", weight="bold" if p["threshold"] == chosen else None)
    ax.set(xlabel="false alarms per minute", ylabel="recall (keywords found, right label)",
           title="spotting trade-off by threshold", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_stream(times, probabilities, labels, truth, detections, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.5))
    for k, label in enumerate(labels):
        if label not in (SILENCE, UNKNOWN) and probabilities[:, k].max() > 0.2:
            ax.plot(times, probabilities[:, k], label=label, linewidth=1)
    for event in truth:
        ax.axvspan(event["start"], event["end"], color="0.9" if event["label"] != UNKNOWN else "0.97", zorder=0)
        ax.text((event["start"] + event["end"]) / 2, 1.04, event["label"], ha="center", fontsize=8)
    for det in detections:
        ax.plot(det["time"], det["probability"], "kv")
        ax.text(det["time"], det["probability"] - 0.12, det["label"], ha="center", fontsize=7)
    ax.set(xlabel="seconds", ylabel="probability (window)", ylim=(0, 1.12),
           title="keyword spotting: clip spans (grey, true word above), window posteriors, detections (▼)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
