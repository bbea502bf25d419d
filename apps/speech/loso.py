"""Leave-one-speaker-out accuracy on FSDD: train on 5 speakers, test on the 6th, average the folds.

    python -m apps.speech.loso --run-root runs/fsdd_loso                       # all 6 speakers
    python -m apps.speech.loso --run-root runs/fsdd_loso --speakers george,theo --set train.epochs=12

Each fold is a normal run dir `<run-root>/<speaker>/` (train with `data.test_speaker`); folds
already finished are reused, so the command can be rerun to add folds. The summary goes to
`<run-root>/loso.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def main(argv=None) -> int:
    from apps.speech import train
    from common.rundir import write_json

    parser = argparse.ArgumentParser(description="FSDD leave-one-speaker-out evaluation.")
    parser.add_argument("--run-root", required=True, help="folder for one run dir per held-out speaker")
    parser.add_argument("--config", default="fsdd", help="speech preset to train each fold with")
    parser.add_argument("--speakers", default=",".join(FSDD_SPEAKERS), help="comma-separated speakers to hold out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config overrides")
    args = parser.parse_args(argv)
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()]
    unknown = sorted(set(speakers) - set(FSDD_SPEAKERS))
    if unknown:
        print(f"error: unknown FSDD speaker(s) {unknown}; choose from {', '.join(FSDD_SPEAKERS)}", file=sys.stderr)
        return 2
    root = Path(args.run_root)
    root.mkdir(parents=True, exist_ok=True)
    for speaker in speakers:
        run = root / speaker
        if (run / "metrics.json").is_file():
            continue
        code = train.main(["--config", args.config, "--run-dir", str(run), "--set", f"data.test_speaker={speaker}"]
                          + [x for item in args.set for x in ("--set", item)])
        if code:
            return code
    folds = {}
    for run in sorted(p for p in root.iterdir() if (p / "metrics.json").is_file()):
        folds[run.name] = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    summary = {"folds": folds, "num_folds": len(folds), "mean_test_accuracy": float(np.mean(list(folds.values())))}
    write_json(root / "loso.json", summary)
    print("\n".join(f"  {k}: {v:.4f}" for k, v in folds.items()))
    print(f"Leave-one-speaker-out mean test accuracy over {len(folds)} folds: {summary['mean_test_accuracy']:.4f}")
    print(f"Summary: {root / 'loso.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
