"""Keyword recognition with a trained speech model: batched probabilities, clip scoring and classification.

    from common.pipeline import load_run
    run = load_run("runs/speech")
    run.predict(waveforms)                  # [clips, samples] float array at the run's sample rate
    run.predict(["a.wav", "b.wav"])         # or WAV/FLAC/OGG paths at any rate
    run.predict(audio_44k, sample_rate=44100)

Waveforms are padded/cropped to the model's clip length around their loudest part, as files are.
Non-finite samples are refused (a NaN would give a confident, meaningless answer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from common.errors import DataError


def predict_probabilities(model, audio: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """`[clips, classes]` probabilities of fixed-length clips, in batches."""
    if len(audio) == 0:
        return np.zeros((0, model.outputs[0].shape[-1]), dtype=np.float32)
    return np.concatenate([np.asarray(model(audio[i:i + batch_size], training=False))
                           for i in range(0, len(audio), batch_size)])


def score_split(model, split, labels: Sequence[str], plot_path: Path | None = None, title: str = "") -> dict:
    """Accuracy, per-class report and majority baseline of a split; its confusion matrix PNG at `plot_path`."""
    from common.evaluation import classification_report, plot_confusion_matrix

    probabilities = predict_probabilities(model, split.audio)
    predicted = probabilities.argmax(axis=-1)
    report = classification_report(split.labels, predicted, labels)
    counts = np.bincount(split.labels, minlength=len(labels))
    report["majority_baseline_accuracy"] = float(counts.max() / counts.sum())
    speakers = list(getattr(split, "speakers", []) or [])
    if len(speakers) == len(split) and len(set(speakers)) <= 50:  # e.g. FSDD's six: how far each voice carries
        hit = predicted == split.labels
        names = np.asarray(speakers)
        report["per_speaker_accuracy"] = {s: float(hit[names == s].mean()) for s in sorted(set(speakers))}
    if plot_path is not None:
        plot_confusion_matrix(report["confusion_matrix"], labels, plot_path,
                              title=f"{title}: accuracy {report['accuracy']:.3f} (n={len(split)})")
    return report


def clip_batch(inputs, cfg, sample_rate: int | None = None) -> tuple[np.ndarray, list[str]]:
    """`(audio [clips, samples], names)` from paths, one waveform or a batch of waveforms."""
    from apps.speech.data import check_finite, fit_length, load_audio, resample

    rate = cfg.data.sample_rate
    num_samples = int(round(rate * cfg.data.clip_seconds))
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(x, (str, Path)) for x in inputs):
        return np.stack([fit_length(load_audio(f, rate), num_samples) for f in inputs]), [str(f) for f in inputs]
    if isinstance(inputs, (list, tuple)) and not inputs:
        raise DataError("no audio given; pass WAV paths or waveforms")
    waves = [np.asarray(inputs, dtype=np.float32)] if np.ndim(inputs) == 1 else [np.asarray(w, np.float32) for w in inputs]
    batch = []
    for i, wave in enumerate(waves):
        if wave.ndim != 1 or wave.size == 0:
            raise DataError(f"waveform {i} has shape {wave.shape}; expected a non-empty 1-D array of samples")
        check_finite(wave, f"waveform {i}")
        if sample_rate and sample_rate != rate:
            wave = resample(wave, sample_rate, rate)
        batch.append(fit_length(wave, num_samples))
    return np.stack(batch), [f"waveform {i}" for i in range(len(batch))]


def classify(run, inputs, top_k: int = 3, sample_rate: int | None = None) -> list[dict]:
    """`[{"input", "label", "probability", "top": [(label, p), ...]}]` per clip."""
    if top_k < 1:
        raise DataError(f"top_k must be >= 1, got {top_k}")
    labels = run.state["labels"]
    audio, names = clip_batch(inputs, run.cfg, sample_rate)
    probabilities = predict_probabilities(run.model, audio)
    results = []
    for name, probs in zip(names, probabilities):
        order = np.argsort(-probs)[:top_k]
        results.append({"input": name, "label": labels[order[0]], "probability": float(probs[order[0]]),
                        "top": [(labels[i], float(probs[i])) for i in order]})
    return results


def spot(run, files: Sequence[str | Path], settings, step_phases: int = 0, live: bool = False) -> list[dict]:
    """`[{file, seconds, detections: [{time, label, probability}, ...]}]` for each (long) recording.

    `step_phases > 0` runs a `streaming` run's step model chunk by chunk as a live stream would."""
    from apps.speech.data import load_audio
    from apps.speech.spotting import check_spottable, detect, posteriors

    if not files:
        raise DataError("no audio files given; usage: predict --run-dir DIR --spot recording.wav [...]")
    cfg, labels = run.cfg, run.state["labels"]
    check_spottable(labels)
    clip_samples = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    results = []
    for file in files:
        audio = load_audio(file, cfg.data.sample_rate)
        times, probabilities = posteriors(run.model, audio, cfg.data.sample_rate, clip_samples, settings, step_phases,
                                          cfg.model.streaming_chunk_frames, live)
        results.append({"file": str(file), "seconds": len(audio) / cfg.data.sample_rate,
                        "detections": detect(times, probabilities, labels, settings)})
    return results
