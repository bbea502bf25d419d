"""Turns an experiments run dir into docs/results.jsonl lines (one JSON object per line, on stdout).

    python -m apps.experiments.records runs/experiments --command "make experiments" \
        --machine "CPU 2 cores (shared)" >> docs/results.jsonl

Per run: the final validation metric (`fraction_within_0.04` for adding, `accuracy` for temporal
order) and, when solved, `steps_to_solve`; `dataset` is the task, `length` is T, `setting` is the
preset (+ its --set overrides), cell variant and clipnorm, so the seeds of one setting group.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path


def lines(results: dict, command: str, machine: str, date: str) -> list[dict]:
    preset = results.get("preset", "?")
    overrides = results.get("overrides", [])
    setting_base = preset + "".join(f" {o}" for o in overrides)
    out = []
    for row in results["runs"]:
        base = {"app": "experiments", "dataset": row["task"], "split": "validation", "length": row["length"],
                "seed": row["seed"], "setting": f"{setting_base} {row['cell']} clip{row['clipnorm']:g}",
                "command": command, "machine": machine, "date": date}
        value = row["final"].get(row["metric"])
        if value is not None:
            out.append({**base, "metric": row["metric"], "value": round(float(value), 4),
                        "steps_run": row["steps_run"], "status": row["status"]})
        if row["solved"]:
            out.append({**base, "metric": "steps_to_solve", "value": row["steps_to_solve"],
                        "sequences_to_solve": row["sequences_to_solve"]})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished experiments run dir (holds results.json)")
    parser.add_argument("--command", required=True, help="the command that produced the run dir")
    parser.add_argument("--machine", required=True, help='e.g. "CPU 2 cores (shared)"')
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    args = parser.parse_args(argv)
    path = Path(args.run_dir) / "results.json"
    if not path.is_file():
        print(f"error: {path} not found: pass a finished experiments run dir", file=sys.stderr)
        return 2
    for line in lines(json.loads(path.read_text()), args.command, args.machine, args.date):
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
