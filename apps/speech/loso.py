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


def check_fold(run: Path, expected) -> None:
    """A finished fold is reused only when it was trained with the config asked for now; otherwise the
    mean would silently mix two settings."""
    from common.config import to_dict
    from common.errors import UsageError
    from common.rundir import config_differences

    path = run / "config.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} cannot be read ({err}); {run} is not a finished fold: use another --run-root") from None
    diff = config_differences(saved, json.loads(json.dumps(to_dict(expected))))
    if diff:
        shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise UsageError(f"fold {run} was trained with other settings (fold -> this command: {shown}); "
                         f"use a new --run-root for this setting, or rerun with the fold's own --config/--set")


def main(argv=None) -> int:
    from common.cli import run_command

    return run_command(lambda: _main(argv))


def _main(argv=None) -> int:
    from apps.speech import train
    from apps.speech.config import PRESETS
    from common.config import resolve_config
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

    def expected(speaker: str):
        return resolve_config(PRESETS, args.config, list(args.set) + [f"data.test_speaker={speaker}"])

    for speaker in speakers:  # settings errors before any training
        expected(speaker)
    root = Path(args.run_root)
    finished = [p for p in sorted(root.iterdir()) if (p / "metrics.json").is_file()] if root.is_dir() else []
    for run in finished:
        check_fold(run, expected(run.name if run.name in FSDD_SPEAKERS else "?"))
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
    summary = {"folds": folds, "num_folds": len(folds), "mean_test_accuracy": float(np.mean(list(folds.values()))),
               "config": args.config, "overrides": list(args.set)}
    write_json(root / "loso.json", summary)
    print("\n".join(f"  {k}: {v:.4f}" for k, v in folds.items()))
    print(f"Leave-one-speaker-out mean test accuracy over {len(folds)} folds: {summary['mean_test_accuracy']:.4f}")
    print(f"Summary: {root / 'loso.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
