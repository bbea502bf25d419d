"""Classify WAV files with a trained speech run dir; prints the top-k labels with probabilities.

    python -m apps.speech.predict --run-dir runs/speech clip1.wav clip2.wav --top-k 3
    python -m apps.speech.predict --run-dir runs/speech --spot recording.wav    # keywords in a long recording

Any sample rate is accepted (resampled to the model's rate); clips are padded/cropped to
the model's clip length around the loudest part. `--spot` instead slides the model over the
whole file and prints each keyword it hears with its time (apps/speech/spotting.py).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from common.training import USER_ERRORS, report_user_error


def predict_files(run_dir, files, top_k: int = 3) -> list[dict]:
    """[{file, top: [(label, probability), ...]}] for each file."""
    from apps.speech.data import fit_length, load_audio
    from apps.speech.evaluate import load_run
    from apps.speech.train import predict_probabilities

    if not files:
        raise ValueError("no audio files given; usage: predict --run-dir DIR file.wav [file.wav ...]")
    if top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {top_k}")
    cfg, labels, model = load_run(run_dir)
    num_samples = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    audio = np.stack([fit_length(load_audio(f, cfg.data.sample_rate), num_samples) for f in files])
    probabilities = predict_probabilities(model, audio)
    results = []
    for file, probs in zip(files, probabilities):
        order = np.argsort(-probs)[:top_k]
        results.append({"file": str(file), "top": [(labels[i], float(probs[i])) for i in order]})
    return results


def spot_files(run_dir, files, settings, step_phases: int = 0, live: bool = False) -> list[dict]:
    """[{file, seconds, detections: [{time, label, probability}, ...]}] for each (long) file.

    `step_phases > 0` runs a `streaming` run's step model chunk by chunk instead of the sliding
    window, as a live stream would: that many staggered states, each reset once per clip length.
    """
    from apps.speech.data import load_audio
    from apps.speech.evaluate import load_run
    from apps.speech.spotting import check_spottable, detect, posteriors

    if not files:
        raise ValueError("no audio files given; usage: predict --run-dir DIR --spot recording.wav [...]")
    cfg, labels, model = load_run(run_dir)
    check_spottable(labels)
    clip_samples = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    results = []
    for file in files:
        audio = load_audio(file, cfg.data.sample_rate)
        times, probabilities = posteriors(model, audio, cfg.data.sample_rate, clip_samples, settings, step_phases,
                                          cfg.model.streaming_chunk_frames, live)
        results.append({"file": str(file), "seconds": len(audio) / cfg.data.sample_rate,
                        "detections": detect(times, probabilities, labels, settings)})
    return results


def main(argv=None) -> int:

    parser = argparse.ArgumentParser(description="Predict speech commands for WAV files.")
    parser.add_argument("--run-dir", required=True, help="run dir written by apps.speech.train")
    parser.add_argument("--top-k", type=int, default=3, help="how many labels to show per file")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument("--spot", action="store_true",
                        help="find every keyword in long recordings (sliding window) instead of classifying clips")
    parser.add_argument("--threshold", type=float, default=0.6, help="--spot: keyword probability that counts")
    parser.add_argument("--hop", type=float, default=0.1, help="--spot: seconds between windows")
    parser.add_argument("--step-model", type=int, default=0, metavar="PHASES",
                        help="--spot with a streaming run: feed its step model chunk by chunk as a live stream "
                             "would, with PHASES staggered states reset once per clip (2 = a window every half "
                             "clip, 5 = every fifth; PHASES must divide the clip's chunks); posteriors are "
                             "averaged over round(0.6 * PHASES) windows")
    parser.add_argument("--live", action="store_true",
                        help="--spot with a streaming run: one step-model state run on and on, never reset, as on "
                             "a live stream (train with --set augment.prefix_clips=1, or it latches)")
    parser.add_argument("files", nargs="*", help="WAV files (any sample rate)")
    args = parser.parse_args(argv)
    try:
        if args.spot:
            from apps.speech.spotting import spot_settings

            settings = spot_settings(args.threshold, args.hop, args.step_model, args.live)
            return _print_spots(spot_files(args.run_dir, args.files, settings, args.step_model, args.live), args.json)
        results = predict_files(args.run_dir, args.files, args.top_k)
    except USER_ERRORS as err:
        return report_user_error(err)
    for result in results:
        if args.json:
            print(json.dumps(result))
        else:
            print(result["file"] + ": " + ", ".join(f"{label} {p:.3f}" for label, p in result["top"]))
    return 0


def _print_spots(results: list[dict], as_json: bool) -> int:
    for result in results:
        if as_json:
            print(json.dumps(result))
            continue
        found = ", ".join(f"{d['time']:.2f}s {d['label']} ({d['probability']:.2f})" for d in result["detections"])
        print(f"{result['file']} ({result['seconds']:.1f} s): {found or 'no keyword'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
