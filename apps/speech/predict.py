"""Classify WAV files with a trained speech run dir; prints the top-k labels with probabilities.

    python -m apps.speech.predict --run-dir runs/speech clip1.wav clip2.wav --top-k 3
    python -m apps.speech.predict --run-dir runs/speech --spot recording.wav    # keywords in a long recording

Any sample rate is accepted (resampled to the model's rate); clips are padded/cropped to
the model's clip length around the loudest part. `--spot` instead slides the model over the
whole file and prints each keyword it hears with its time (apps/speech/spotting.py).
From Python, `load_run(dir).predict(waveforms)` takes arrays too (apps/speech/inference.py).
"""

from __future__ import annotations

import json

from common.cli import predict_main
from common.errors import UsageError


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="*", help="WAV/FLAC/OGG files (any sample rate)")
    parser.add_argument("--top-k", type=int, default=3, help="how many labels to show per file")
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


def run_command(run, args) -> int:
    from apps.speech.inference import classify, spot

    if not args.files:
        raise UsageError("no audio files given; usage: predict --run-dir DIR file.wav [file.wav ...]")
    if args.spot:
        from apps.speech.spotting import spot_settings

        settings = spot_settings(args.threshold, args.hop, args.step_model, args.live)
        for result in spot(run, args.files, settings, args.step_model, args.live):
            if args.json:
                print(json.dumps(result))
                continue
            found = ", ".join(f"{d['time']:.2f}s {d['label']} ({d['probability']:.2f})" for d in result["detections"])
            print(f"{result['file']} ({result['seconds']:.1f} s): {found or 'no keyword'}")
        return 0
    for result in classify(run, args.files, top_k=args.top_k):
        if args.json:
            print(json.dumps({"file": result["input"], "top": result["top"]}))
        else:
            print(result["input"] + ": " + ", ".join(f"{label} {p:.3f}" for label, p in result["top"]))
    return 0


def main(argv=None) -> int:
    return predict_main("speech", argv)


if __name__ == "__main__":
    raise SystemExit(main())
