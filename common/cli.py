"""One command-line surface for every app: the same flags, the same exit codes, one error policy.

    python -m apps.speech.train --config default --run-dir runs/speech --set train.epochs=20
    python -m apps.speech.evaluate --run-dir runs/speech [--split test] [--data DIR] [--out DIR]
    python -m apps.speech.predict --run-dir runs/speech clip.wav
    python -m apps.speech.export --run-dir runs/speech [--formats keras onnx] [--out DIR]
    lstm-suite speech train --config tiny --run-dir /tmp/s        # the same, through the console script

Exit codes: 0 done; 2 a user error (one line on stderr naming the problem and the fix: a
`common.errors.UserError`); 1 an internal error, with its traceback; 130 interrupted.
`train --help` lists every `--set` key with its type, default and comment, and every preset.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Callable, Sequence

from common.errors import UserError


def run_command(body: Callable[[], int | None]) -> int:
    """Runs a command body with the suite's error policy: user errors in one line (exit 2), bugs with
    their traceback (exit 1, Python's own), Ctrl-C as exit 130."""
    try:
        return int(body() or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _preset_lines(app) -> str:
    lines = []
    for name in app.presets:
        note = app.preset_help.get(name, "")
        lines.append(f"  {name:14s} {note}")
    return "\n".join(lines)


def settings_help(app, preset: str = "default") -> str:
    """Every `--set` key with its type, the preset's value and the field's comment."""
    from common.config import field_table

    rows = field_table(app.presets[preset])
    out = []
    for key, type_name, value, doc in rows:
        head = f"  {key} ({type_name}) = {value!r}"
        out.append(head)
        if doc:
            out.extend(textwrap.wrap(doc, width=100, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(out)


_PROG: list[str] = []  # "lstm-suite APP COMMAND" while main() dispatches; else the module's own name


def _parser(app, command: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=_PROG[-1] if _PROG else f"python -m {app.package}.{command}", description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def train_parser(app) -> argparse.ArgumentParser:
    default = "default" if "default" in app.presets else next(iter(app.presets))
    epilog = (f"presets (--config):\n{_preset_lines(app)}\n\n"
              f"settings (--set KEY=VALUE; quote values with brackets or spaces, e.g. --set 'model.units=(64,64)'), "
              f"with the {default} preset's values:\n{settings_help(app, default)}")
    parser = _parser(app, "train", f"Train the {app.name} app: {app.title}.", epilog)
    parser.add_argument("--config", default=default, choices=list(app.presets), metavar="PRESET",
                        help=f"preset to start from: {', '.join(app.presets)} (default {default}; see below)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable); every key is listed below")
    parser.add_argument("--run-dir", required=False, help="where the run is written (config.json, model.keras, "
                        "history.json, metrics.json, plots)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from <run-dir>.partial")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing finished run dir (only one this suite wrote)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as JSON (after --set and validation) and exit")
    return parser


def train_main(app, argv: Sequence[str] | None = None) -> int:
    from common.pipeline import get_app, train

    app = get_app(app)
    args = train_parser(app).parse_args(argv)

    def body():
        from common.config import to_dict
        from common.errors import UsageError

        cfg = app.config(args.config, args.set)
        if args.print_config:
            print(json.dumps(to_dict(cfg), indent=2))
            return 0
        if not args.run_dir:
            raise UsageError("--run-dir is required: the folder the run is written to, e.g. --run-dir runs/my-run")
        train(app, cfg, args.run_dir, resume=args.resume, overwrite=args.overwrite)
        return 0

    return run_command(body)


def evaluate_main(app, argv: Sequence[str] | None = None) -> int:
    from common.pipeline import evaluate, get_app, load_run

    app = get_app(app)
    parser = _parser(app, "evaluate", f"Evaluate a trained {app.name} run dir; results go to "
                     f"<run-dir>/eval/<name>/metrics.json (+ plots).")
    parser.add_argument("--run-dir", required=True, help=f"a run dir written by {app.package}.train")
    parser.add_argument("--split", default=None, choices=list(app.splits),
                        help=f"which split to score (default {app.default_split or 'the source reports'})")
    parser.add_argument("--data", default=None, help="score other data instead of the run's own source")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a data/eval setting of the run's config, e.g. --set data.path=other.csv")
    parser.add_argument("--out", default=None, help="output folder (default <run-dir>/eval/<name>)")
    app.add_evaluate_arguments(parser)
    args = parser.parse_args(argv)
    generic = {"run_dir", "split", "data", "set", "out"}
    options = {k: v for k, v in vars(args).items() if k not in generic}

    def body():
        run = load_run(args.run_dir, app)
        metrics = evaluate(run, args.split, args.data, args.out, args.set, **options)
        out = Path(args.out) if args.out else run.path / "eval" / app.evaluation_name(
            metrics["split"], args.data, options)
        app.print_evaluation(metrics, out)
        print(f"Metrics: {out / 'metrics.json'}")
        return 0

    return run_command(body)


def export_main(app, argv: Sequence[str] | None = None) -> int:
    from common.pipeline import export, get_app, load_run

    app = get_app(app)
    parser = _parser(app, "export", f"Export a trained {app.name} run dir (each format parity-checked against "
                     f"the Keras model; TensorFlow backend).")
    parser.add_argument("--run-dir", required=True, help=f"a run dir written by {app.package}.train")
    parser.add_argument("--out", default=None, help="output folder (default <run-dir>/export)")
    parser.add_argument("--formats", nargs="+", default=list(app.default_export_formats), metavar="FORMAT",
                        help=f"formats to write, space-separated: {' '.join(app.export_formats)} "
                             f"(default {' '.join(app.default_export_formats)})")
    parser.add_argument("--num-examples", type=int, default=8, help="examples used for the parity checks")
    app.add_export_arguments(parser)
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in {"run_dir", "out", "formats", "num_examples"}}

    def body():
        run = load_run(args.run_dir, app)
        formats = [f for item in args.formats for f in item.split(",") if f]
        report = export(run, args.out, formats, args.num_examples, **options)
        out = Path(args.out) if args.out else run.path / "export"
        print(f"Exported {run.path} to {out}:")
        app.print_export(report, out)
        print(f"Report: {out / 'export.json'}")
        return 0

    return run_command(body)


def predict_main(app, argv: Sequence[str] | None = None) -> int:
    from common.pipeline import get_app, load_run

    app = get_app(app)
    parser = _parser(app, app.predict_command, f"Predict with a trained {app.name} run dir.")
    parser.add_argument("--run-dir", required=True, help=f"a run dir written by {app.package}.train")
    parser.add_argument("--json", action="store_true", help="print one JSON object per result")
    app.add_predict_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: app.run_predict_command(load_run(args.run_dir, app), args))


COMMANDS = {"train": train_main, "evaluate": evaluate_main, "predict": predict_main, "export": export_main}


def main(argv: Sequence[str] | None = None) -> int:
    """`lstm-suite APP COMMAND [options]`: the console script installed by `pip install .`."""
    from apps import APPS

    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (f"usage: lstm-suite APP COMMAND [options]\n  APP: {', '.join(APPS)} (or experiments)\n"
             f"  COMMAND: {', '.join(COMMANDS)} (experiments: run)\n  lstm-suite APP COMMAND --help shows the options")
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    name, command, rest = argv[0], argv[1], argv[2:]
    if name == "experiments":
        from apps.experiments.run import main as experiments_main

        return experiments_main(rest)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from common.pipeline import get_app

    try:
        app = get_app(name)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _PROG.append(f"lstm-suite {name} {command}")
    try:
        return COMMANDS[command](app, rest)
    finally:
        _PROG.pop()


if __name__ == "__main__":
    raise SystemExit(main())
