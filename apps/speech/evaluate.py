"""Evaluate a trained speech run dir: accuracy, per-class precision/recall, confusion matrix.

    python -m apps.speech.evaluate --run-dir runs/speech                       # its own held-out test split
    python -m apps.speech.evaluate --run-dir runs/speech --split validation
    python -m apps.speech.evaluate --run-dir runs/speech \\
        --data ../shared/data/speech/speech_commands_v0.01_sample.tar.xz --split all --keywords-only
    python -m apps.speech.evaluate --run-dir runs/fsdd --data ../shared/data/speech/fsdd.tar.xz

`--data` takes a Speech Commands folder/archive or an FSDD folder/archive (detected from the
file names). Results go to `<run-dir>/eval/<name>_<split>/` (metrics.json, confusion_matrix.png)
unless `--out` says otherwise.

`--spotting` also joins the clips (all but `_silence_`; `_unknown_` words stay as distractors)
into streams of 10 with random pauses and spots keywords in them with a sliding window
(apps/speech/spotting.py): recall, false alarms per minute and a plot of one stream.
`--negatives PATH` (repeatable) adds false accepts per hour on streams of real speech that holds
none of the keywords (FSDD, or a Speech Commands layout whose keyword folders are left out):

    python -m apps.speech.evaluate --run-dir runs/speech --split all --spotting \\
        --data ../shared/data/speech/speech_commands_v0.01_sample.tar.xz \\
        --negatives ../shared/data/speech/fsdd.tar.xz \\
        --negatives ../shared/data/speech/speech_commands_v0.01_sample.tar.xz
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.speech.config import SILENCE, UNKNOWN
from common.cli import evaluate_main
from common.errors import DataError, UsageError


def keep_keywords(split, labels):
    from apps.speech.data import Split

    keep = np.asarray([labels[y] not in (SILENCE, UNKNOWN) for y in split.labels], dtype=bool)
    return Split(split.audio[keep], split.labels[keep], [s for s, k in zip(split.speakers, keep) if k],
                 [p for p, k in zip(split.paths, keep) if k])


def _describe_folder(path: str) -> str:
    """What a folder holds, for the error when it has no clips to score."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return ""
    children = sorted(c.name + ("/" if c.is_dir() else "") for c in folder.iterdir() if not c.name.startswith("."))
    shown = ", ".join(children[:8]) + (", ..." if len(children) > 8 else "")
    return f"; {folder} holds {shown or 'nothing'}"


def evaluate_run(run, split_name: str, data: str | None, out: Path, keywords_only: bool = False,
                 spotting: bool = False, threshold: float = 0.6, step_model: int = 0, live: bool = False,
                 negatives: Sequence[str] = ()) -> dict:
    """Scores `split_name` of the run's data source (or of `data`); plots into `out`; returns the report."""
    from apps.speech.data import load_data, load_eval_data, load_negative_speech
    from apps.speech.inference import score_split
    from apps.speech.spotting import spot_settings

    cfg, labels, model = run.cfg, run.state["labels"], run.model
    # Spotting flags are checked before anything is scored or written.
    settings = spot_settings(threshold, step_phases=step_model, live=live) if spotting else None
    if negatives and not spotting:
        raise UsageError("--negatives counts false accepts while spotting; add --spotting")
    negative = load_negative_speech(negatives, cfg.data.sample_rate, labels) if negatives else None
    if data:
        split = load_eval_data(data, cfg.data, labels, split_name)
    else:
        if split_name == "all":
            raise UsageError("--split all needs --data (a folder or archive to score entirely)")
        split = getattr(load_data(cfg.data, verbose=False), split_name)
    if keywords_only:
        split = keep_keywords(split, labels)
    if len(split) == 0:
        raise DataError(f"no clips to evaluate in split {split_name!r} of {data or cfg.data.source}; --data takes a "
                        f"Speech Commands layout <word>/<speaker>_nohash_<n>.wav (folder or .tar.xz) or FSDD "
                        f"recordings {{digit}}_{{speaker}}_{{index}}.wav" + (_describe_folder(data) if data else ""))
    name = out.name
    report = score_split(model, split, labels, out / "confusion_matrix.png", title=f"{name}")
    report["keywords_only"] = bool(keywords_only)
    if spotting:
        report["spotting"] = _spotting(model, split, labels, cfg, out, settings, step_model, live, negative)
    return report


def print_report(report: dict, out: Path) -> None:
    print(f"{out.name}: accuracy {report['accuracy']:.4f} on {report['num_examples']} clips "
          f"(majority baseline {report['majority_baseline_accuracy']:.4f})")
    print(f"{'class':>12} {'precision':>9} {'recall':>7} {'support':>7}")
    for label, row in report["per_class"].items():
        if row["support"] or row["precision"]:
            print(f"{label:>12} {row['precision']:9.3f} {row['recall']:7.3f} {row['support']:7d}")
    if 0 < len(report.get("per_speaker_accuracy") or {}) <= 10:
        print("per speaker: " + ", ".join(f"{s} {a:.3f}" for s, a in report["per_speaker_accuracy"].items()))
    print(f"Confusion matrix: {out / 'confusion_matrix.png'}")


def main(argv=None) -> int:
    return evaluate_main("speech", argv)


def _spotting(model, split, labels, cfg, out: Path, settings, step_phases: int = 0, live: bool = False,
              negative: tuple | None = None) -> dict:
    """Keyword spotting on streams made of the split's clips; prints and returns the totals.

    `negative` (`load_negative_speech`'s clips and summary): streams of speech holding no keyword,
    scored for false accepts per hour at each threshold, beside the miss rate on the keyword streams.
    """
    from apps.speech.spotting import check_spottable, detect, make_streams, posteriors, score_detections

    check_spottable(labels)
    keep = np.asarray([labels[y] != SILENCE for y in split.labels], dtype=bool)
    if not np.any([labels[y] not in (SILENCE, UNKNOWN) for y in split.labels]):
        raise DataError("--spotting needs keyword clips in the evaluated split")
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

    thresholds = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    totals = score(settings)
    totals["miss_rate"] = 1.0 - totals["recall"]
    # The trade-off over thresholds, from the same posteriors (a DET-style curve).
    curve = [{"threshold": t, **score(dataclasses.replace(settings, threshold=t))} for t in thresholds]
    if negative is not None:
        clips, summary = negative
        sources = summary["sources"]
        # Each clip is labelled with its source, so a false accept (and the stream time up to the end of
        # its clip, from the end of the one before) is counted for the source whose clip it fell in.
        source_of = np.repeat(np.arange(len(sources)), [s["recordings"] for s in sources]).astype(np.int32)
        names = [str(i) for i in range(len(sources))]
        negative_streams = make_streams(clips, source_of, names, rate, seed=1)
        negative_posteriors = [posteriors(model, audio, rate, clip_samples, settings, step_phases,
                                          cfg.model.streaming_chunk_frames, live) for audio, _ in negative_streams]
        hours = sum(len(audio) for audio, _ in negative_streams) / rate / 3600
        # Per stream: where each clip's share of the stream ends (the closing gap belongs to the last
        # clip) and its source; a stream's time and its detections fall into these segments.
        segments = []
        source_hours = np.zeros(len(sources))
        for audio, truth in negative_streams:
            ends = np.asarray([clip["end"] for clip in truth[:-1]] + [len(audio) / rate])
            owner = np.asarray([int(clip["label"]) for clip in truth])
            np.add.at(source_hours, owner, np.diff(ends, prepend=0.0) / 3600)
            segments.append((ends, owner))

        def false_accepts(spot) -> np.ndarray:
            counts = np.zeros(len(sources), dtype=int)
            for (times, probabilities), (ends, owner) in zip(negative_posteriors, segments):
                for det in detect(times, probabilities, labels, spot):
                    counts[owner[min(int(np.searchsorted(ends, det["time"])), len(owner) - 1)]] += 1
            return counts

        accepted = false_accepts(settings)
        for source, count, source_h in zip(sources, accepted, source_hours):
            source.update(false_accepts=int(count), stream_minutes=source_h * 60,
                          false_accepts_per_hour=count / max(source_h, 1e-9))
        totals["negatives"] = {**summary, "streams": len(negative_streams), "stream_minutes": hours * 60,
                               "false_accepts": int(accepted.sum()), "false_accepts_per_hour": accepted.sum() / hours}
        for point in curve:
            counts = false_accepts(dataclasses.replace(settings, threshold=point["threshold"]))
            point["false_accepts_per_hour"] = counts.sum() / hours
            point["false_accepts_per_hour_by_source"] = (counts / np.maximum(source_hours, 1e-9)).tolist()
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
    if negative is not None:
        neg = totals["negatives"]
        print(f"negatives: {neg['false_accepts']} false accepts in {neg['stream_minutes']:.1f} min of keyword-free "
              f"audio ({neg['recordings']} recordings, {neg['recording_minutes']:.1f} min): "
              f"{neg['false_accepts_per_hour']:.1f} per hour; miss rate {totals['miss_rate']:.3f}")
        if len(neg["sources"]) > 1:
            for source in neg["sources"]:
                print(f"  {source['path']}: {source['false_accepts']} in {source['stream_minutes']:.1f} min, "
                      f"{source['false_accepts_per_hour']:.1f} per hour")
    for point in curve:
        extra = (f", {point['false_accepts_per_hour']:.1f} false accepts/hour on the negatives"
                 if "false_accepts_per_hour" in point else "")
        print(f"  threshold {point['threshold']:.1f}: recall {point['recall']:.3f}, "
              f"{point['false_alarms_per_minute']:.2f} false alarms/min{extra}")
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
