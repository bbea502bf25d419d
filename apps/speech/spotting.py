"""Keyword spotting in long recordings with a clip classifier.

A window of the model's clip length slides over the audio (`hop_seconds` apart), the
classifier's posteriors are averaged over neighbouring windows, and every keyword occurrence
becomes one detection: the peak of each run of windows where a keyword is the most probable
class with at least `threshold`, no two peaks closer than `refractory_seconds` (the stronger stays).

    python -m apps.speech.predict --run-dir runs/speech --spot recording.wav
    python -m apps.speech.evaluate --run-dir runs/speech --spotting \\
        --data ../shared/data/speech/speech_commands_v0.01_sample.tar.xz --split all

`staggered_step_posteriors` computes the same windows with a `streaming` model's step model, as a
live stream would (chunk by chunk, staggered states reset once per window).
`make_streams` and `score_detections` turn a folder of labelled one-second clips into long
streams with known keyword times and score detections on them (recall, false alarms per minute).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from apps.speech.config import SILENCE, UNKNOWN
from common.config import check_fields
from common.errors import UsageError


@dataclasses.dataclass(frozen=True)
class SpotSettings:
    hop_seconds: float = 0.1  # distance between window starts
    threshold: float = 0.6  # smoothed keyword probability that counts as a detection
    # Chosen on the synthetic validation streams of the default run (docs/results.md): averaging
    # 5 windows halves the false alarms of no averaging at the same recall.
    smooth_windows: int = 5  # posteriors are averaged over this many neighbouring windows
    refractory_seconds: float = 0.8  # no two detections closer than this

    def __post_init__(self):
        check_fields(self, "spotting", [("hop_seconds", self.hop_seconds > 0, "> 0"),
                                        ("threshold", 0 < self.threshold <= 1, "in (0, 1]"),
                                        ("smooth_windows", self.smooth_windows >= 1, ">= 1"),
                                        ("refractory_seconds", self.refractory_seconds >= 0, ">= 0")])


def check_spottable(labels: list[str]) -> None:
    """Spotting needs a class for the pauses between words; a digits-only model labels every window."""
    if SILENCE not in labels:
        raise UsageError(f"keyword spotting needs a model trained with a {SILENCE} class (pauses between words); "
                         f"this run's classes are {labels}; train with --set data.include_silence=true")


def window_posteriors(model, audio: np.ndarray, sample_rate: int, clip_samples: int, hop_seconds: float,
                      batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """`(centres [windows] in seconds, probabilities [windows, classes])` of clip-long windows.

    Audio shorter than one clip is padded with zeros at the end; the last window ends at the end.
    """
    from apps.speech.inference import predict_probabilities

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(audio) < clip_samples:
        audio = np.pad(audio, (0, clip_samples - len(audio)))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    starts = list(range(0, len(audio) - clip_samples + 1, hop))
    if starts[-1] != len(audio) - clip_samples:
        starts.append(len(audio) - clip_samples)
    probabilities = []
    for i in range(0, len(starts), batch_size):  # windows are built per batch: a long file stays small in memory
        batch = np.stack([audio[s:s + clip_samples] for s in starts[i:i + batch_size]])
        probabilities.append(predict_probabilities(model, batch, batch_size))
    centres = (np.asarray(starts) + clip_samples / 2) / sample_rate
    return centres, np.concatenate(probabilities)


def _step_model(model, chunk_frames: int, batch_size: int):
    """`(step model, chunk samples, clip samples, sample rate)` of a `streaming` classifier."""
    from apps.speech.model import build_streaming_model

    step = build_streaming_model(model, chunk_frames, batch_size=batch_size, dft="stft")
    return (step, int(step.inputs[0].shape[1]), int(model.inputs[0].shape[1]),
            int(model.get_layer("frontend").sample_rate))


def staggered_step_posteriors(model, audio: np.ndarray, chunk_frames: int, phases: int = 2):
    """Window posteriors of a `streaming` model computed as a live stream would: chunk by chunk through
    its step model, with `phases` staggered states, each reset at its own window start.

    Run on and on from one state, the step model holds a detected word for seconds (it was trained
    on single clips). Resetting every clip length, `phases` times per clip at staggered offsets,
    bounds that; at the end of each window the step output equals the full model on that window, so
    this returns what `window_posteriors` returns with `hop = clip / phases` (without its extra
    final window), for `phases` step evaluations per chunk (one batched call).

    Returns `(centres [windows] in seconds, probabilities [windows, classes])`, ordered by time.
    """
    from apps.speech.model import stream_chunks

    step, chunk, clip_samples, rate = _step_model(model, chunk_frames, phases)
    per_clip = clip_samples // chunk
    if clip_samples % chunk or per_clip % phases:
        raise UsageError(f"phases={phases} must divide the {per_clip} chunks of a clip (clip {clip_samples} samples, "
                         f"chunk {chunk})")
    offsets = [k * per_clip // phases for k in range(phases)]

    def reset(i, state):  # a phase that starts a new window gets a fresh (zero) state
        for k, offset in enumerate(offsets):
            if i >= offset and (i - offset) % per_clip == 0:
                for s in state:
                    s[k] = 0.0

    audio = np.broadcast_to(np.asarray(audio, dtype=np.float32).reshape(1, -1), (phases, np.size(audio)))
    centres, probabilities = [], []
    for i, outputs in enumerate(stream_chunks(step, audio, reset=reset)):
        for k, offset in enumerate(offsets):
            done = i + 1 - offset
            if done >= per_clip and done % per_clip == 0:  # a whole window since the reset
                centres.append(((i + 1) * chunk - clip_samples / 2) / rate)
                probabilities.append(outputs[k])
    order = np.argsort(centres, kind="stable")
    return np.asarray(centres)[order], np.asarray(probabilities)[order]


def live_step_posteriors(model, audio: np.ndarray, chunk_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The step model of a `streaming` model run on and on from one state, as a live stream would
    (never reset): one output per chunk, timed like a window centre (chunk end minus half a clip,
    at least 0).

    Trained on single clips the state latches onto detected words; trained with
    `augment.prefix_clips` it lets go (docs/results.md).
    """
    from apps.speech.model import stream_chunks

    step, chunk, clip_samples, rate = _step_model(model, chunk_frames, 1)
    probabilities = [p[0] for p in stream_chunks(step, np.asarray(audio, dtype=np.float32).reshape(1, -1))]
    centres = [max(0.0, ((i + 1) * chunk - clip_samples / 2) / rate) for i in range(len(probabilities))]  # first chunks: 0
    return np.asarray(centres), np.asarray(probabilities).reshape(len(centres), -1)


def spot_settings(threshold: float = 0.6, hop_seconds: float = 0.1, step_phases: int = 0,
                  live: bool = False) -> SpotSettings:
    """Settings for the sliding window, for the step model with `step_phases` staggered states, or
    for one never-reset step-model state (`live`); the CLI flags are checked here, before any work.

    With the step model a window comes every clip / `step_phases`; averaging about 0.6 clip of them
    did best on the synthetic validation streams (2 phases: 1 window, 5: 3; docs/results.md).
    """
    if step_phases < 0:
        raise UsageError(f"--step-model must be >= 1 (phases), got {step_phases}")
    if live and step_phases:
        raise UsageError("--live runs one never-reset state; --step-model resets staggered ones: choose one")
    smooth = max(1, round(0.6 * step_phases)) if step_phases else SpotSettings.smooth_windows
    return SpotSettings(hop_seconds=hop_seconds, threshold=threshold, smooth_windows=smooth)


def posteriors(model, audio: np.ndarray, sample_rate: int, clip_samples: int, settings: SpotSettings,
               step_phases: int = 0, chunk_frames: int = 10, live: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Window posteriors by the sliding window, by the step model with `step_phases > 0` staggered
    states, or by one never-reset step model (`live`)."""
    if live:
        return live_step_posteriors(model, audio, chunk_frames)
    if step_phases:
        times, probabilities = staggered_step_posteriors(model, audio, chunk_frames, step_phases)
        if len(times) == 0:
            raise UsageError(f"{len(audio) / sample_rate:.2f} s of audio is shorter than one clip "
                             f"({clip_samples / sample_rate} s); the step model needs at least that much")
        return times, probabilities
    return window_posteriors(model, audio, sample_rate, clip_samples, settings.hop_seconds)


def detect(times: np.ndarray, probabilities: np.ndarray, labels: list[str], settings: SpotSettings) -> list[dict]:
    """Detections `[{time, label, probability}]` (sorted by time) from window posteriors."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if settings.smooth_windows > 1 and len(probabilities) > 1:
        kernel = np.ones(settings.smooth_windows)
        counts = np.convolve(np.ones(len(probabilities)), kernel, mode="same")  # fewer neighbours at the edges
        probabilities = np.stack([np.convolve(p, kernel, mode="same") for p in probabilities.T], axis=1) / counts[:, None]
    keywords = np.asarray([i for i, label in enumerate(labels) if label not in (SILENCE, UNKNOWN)])
    best = keywords[np.argmax(probabilities[:, keywords], axis=1)]
    score = probabilities[np.arange(len(best)), best]
    candidates = np.flatnonzero((score >= settings.threshold) & (best == probabilities.argmax(axis=1)))
    peaks, run = [], []  # one peak per run of consecutive windows with the same keyword
    for i in candidates:
        if run and (i != run[-1] + 1 or best[i] != best[run[-1]]):
            peaks.append(max(run, key=lambda j: score[j]))
            run = []
        run.append(i)
    if run:
        peaks.append(max(run, key=lambda j: score[j]))
    accepted: list[int] = []
    for i in sorted(peaks, key=lambda i: -score[i]):  # strongest first; peaks within the refractory period drop
        if all(abs(times[i] - times[j]) >= settings.refractory_seconds for j in accepted):
            accepted.append(i)
    return [{"time": float(times[i]), "label": labels[best[i]], "probability": float(score[i])} for i in sorted(accepted)]


def make_streams(audio: np.ndarray, labels: np.ndarray, label_names: list[str], sample_rate: int,
                 clips_per_stream: int = 10, gap_seconds: tuple[float, float] = (0.3, 1.2), seed: int = 0):
    """Concatenates labelled clips into streams with random gaps of faint noise between them.

    Returns `[(stream_audio, [{"label", "start", "end"}, ...]), ...]`; every clip is used once.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(audio))
    streams = []
    for first in range(0, len(order), clips_per_stream):
        pieces, truth, t = [], [], 0.0
        for index in order[first:first + clips_per_stream]:
            gap = rng.normal(0.0, 1e-4, int(rng.uniform(*gap_seconds) * sample_rate)).astype(np.float32)
            pieces += [gap, audio[index]]
            t += len(gap) / sample_rate
            truth.append({"label": label_names[int(labels[index])], "start": t, "end": t + len(audio[index]) / sample_rate})
            t += len(audio[index]) / sample_rate
        pieces.append(rng.normal(0.0, 1e-4, int(gap_seconds[0] * sample_rate)).astype(np.float32))
        streams.append((np.concatenate(pieces), truth))
    return streams


def score_detections(detections: list[dict], truth: list[dict]) -> dict:
    """Matches each detection to at most one clip of its label whose span contains its time.

    Unmatched detections are false alarms (`wrong_label` counts those inside another word's clip,
    an `_unknown_` distractor included); keyword clips left unmatched are misses.
    """
    used = [False] * len(truth)
    hits = false_alarms = wrong_label = 0
    for det in detections:
        inside = [i for i, event in enumerate(truth) if event["start"] <= det["time"] <= event["end"]]
        match = next((i for i in inside if not used[i] and truth[i]["label"] == det["label"]), None)
        if match is None:
            false_alarms += 1
            wrong_label += int(any(truth[i]["label"] != det["label"] for i in inside))
        else:
            used[match] = True
            hits += 1
    keywords = sum(event["label"] not in (SILENCE, UNKNOWN) for event in truth)
    return {"keywords": keywords, "detections": len(detections), "hits": hits, "misses": keywords - hits,
            "false_alarms": false_alarms, "wrong_label": wrong_label}
