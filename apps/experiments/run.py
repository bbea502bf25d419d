"""Runs the long-time-lag sweep: tasks x lengths x cells x clipping, and writes the results.

    python -m apps.experiments.run --config default --run-dir runs/experiments   # make experiments, ~10 min on CPU
    python -m apps.experiments.run --config tiny --run-dir /tmp/exp              # seconds, for tests
    python -m apps.experiments.run --config gpu --run-dir runs/experiments-gpu   # T = 100/500/1000

Every run trains one recurrent layer + head on fresh random batches (infinite data, as in
Hochreiter & Schmidhuber 1997) and checks a fixed validation set every `sweep.eval_every`
steps; it stops once solved (see `solved` below), diverged (non-finite loss) or out of budget.
Before and after training it measures |dLoss/dh_t| for every t (apps/experiments/gradients.py).

Run dir: `config.json`, `results.json` (one row per run, with curves and gradient norms),
`results.md` (the table), `learning_curves.png`, `gradient_flow.png`, and
`models/<run>/{model.keras,config.json,sample_input.npy}`; each of those folders is a
run dir that `python -m common.inspect` can open.

"Solved" follows the paper's per-sequence criteria on a held-out set:
adding - the share of validation sequences with absolute error < 0.04 is at least
`sweep.solve_fraction` (paper: every one of the last 2000 training sequences);
temporal order - validation accuracy is at least `sweep.solve_fraction`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import keras
import numpy as np

from apps.experiments.config import PRESETS, Config
from apps.experiments.gradients import hidden_gradient_norms
from apps.experiments.model import CELL_TYPES, build_model
from apps.experiments.tasks import TASKS, TaskSpec, baseline_predictions, get_task, score
from common.config import ConfigError, build_parser, describe, resolve_config, save_config
from common.training import make_optimizer, print_summary, report_user_error, RunDir, set_seed, USER_ERRORS, write_json


def validate(cfg: Config) -> None:
    """Raises ConfigError for a sweep that cannot run, naming the bad value."""
    for task in cfg.data.tasks:
        if task not in TASKS:
            raise ConfigError(f"data.tasks: unknown task {task!r}; choose from {', '.join(TASKS)}")
    for cell in cfg.model.cells:
        if cell not in CELL_TYPES:
            raise ConfigError(f"model.cells: unknown cell {cell!r}; choose from {', '.join(CELL_TYPES)}")
    if not cfg.data.tasks or not cfg.data.lengths or not cfg.model.cells or not cfg.sweep.clipnorms:
        raise ConfigError("data.tasks, data.lengths, model.cells and sweep.clipnorms must each name at least one value")
    if min(cfg.data.lengths) < 20:
        raise ConfigError(f"data.lengths must all be >= 20 (the tasks place markers at 10% and 50% of T), got {cfg.data.lengths}")
    if min(cfg.sweep.clipnorms) < 0:
        raise ConfigError(f"sweep.clipnorms must be >= 0 (0 disables clipping), got {cfg.sweep.clipnorms}")
    if cfg.sweep.max_steps < 1 or cfg.sweep.eval_every < 1:
        raise ConfigError("sweep.max_steps and sweep.eval_every must be >= 1")
    if not 0 < cfg.sweep.solve_fraction <= 1:
        raise ConfigError(f"sweep.solve_fraction must be in (0, 1], got {cfg.sweep.solve_fraction}")


def run_name(task: str, length: int, cell: str, clipnorm: float) -> str:
    return f"{task}_T{length}_{cell}_clip{clipnorm:g}"


def train_one(spec: TaskSpec, length: int, cell: str, clipnorm: float, cfg: Config,
              validation: tuple[np.ndarray, np.ndarray]) -> tuple[dict, keras.Model]:
    """Trains one model until solved / diverged / out of budget; returns its results row and the model."""
    set_seed(cfg.train.seed)
    model = build_model(cell, cfg.model.units, length, spec.input_dim, spec.output_dim, spec.loss)
    x_val, y_val = validation
    probe_x, probe_y = x_val[: cfg.sweep.gradient_batch], y_val[: cfg.sweep.gradient_batch]
    gradients_init = hidden_gradient_norms(model, probe_x, probe_y, spec.loss)
    train_cfg = dataclasses.replace(cfg.train, clipnorm=float(clipnorm), epochs=1)
    model.compile(optimizer=make_optimizer(train_cfg, steps_per_epoch=cfg.sweep.max_steps), loss=spec.loss)

    def evaluate(step: int, train_loss: float | None) -> dict:
        metrics = score(spec.name, model.predict(x_val, batch_size=500, verbose=0), y_val)
        row = {"step": step, "train_loss": train_loss, **metrics}
        for key, value in row.items():
            curve.setdefault(key, []).append(value)
        return metrics

    rng = np.random.default_rng(cfg.train.seed + 1)  # Training batches never overlap the validation stream.
    curve: dict[str, list] = {}
    metrics = evaluate(0, None)
    status, steps_to_solve, recent, step = "budget", None, [], 0
    start = time.perf_counter()
    for step in range(1, cfg.sweep.max_steps + 1):
        x, y = spec.generate(rng, cfg.train.batch_size, length)
        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
        recent.append(loss)
        if not math.isfinite(loss):
            status = "diverged"
            break
        if step % cfg.sweep.eval_every == 0 or step == cfg.sweep.max_steps:
            metrics = evaluate(step, float(np.mean(recent)))
            recent = []
            if metrics[spec.metric] >= cfg.sweep.solve_fraction:
                status, steps_to_solve = "solved", step
                break
            if cfg.sweep.max_seconds_per_run and time.perf_counter() - start > cfg.sweep.max_seconds_per_run:
                status = "time"
                break
    seconds = time.perf_counter() - start
    gradients_trained = (
        hidden_gradient_norms(model, probe_x, probe_y, spec.loss) if status != "diverged" else np.full(length, np.nan)
    )
    row = {
        "run": run_name(spec.name, length, cell, clipnorm),
        "task": spec.name,
        "length": length,
        "cell": cell,
        "clipnorm": float(clipnorm),
        "status": status,
        "solved": status == "solved",
        "steps_to_solve": steps_to_solve,
        "sequences_to_solve": None if steps_to_solve is None else steps_to_solve * cfg.train.batch_size,
        "steps_run": step,
        "seconds": round(seconds, 1),
        "metric": spec.metric,
        "final": metrics,
        "baseline": score(spec.name, baseline_predictions(spec.name, len(y_val)), y_val),
        "curve": curve,
        "gradient_norms_init": gradients_init.tolist(),
        "gradient_norms_trained": gradients_trained.tolist(),
    }
    return _json_safe(row), model


def _json_safe(obj):
    """NaN/inf (a diverged run) become null, so results.json stays standard JSON."""
    if isinstance(obj, dict):
        return {key: _json_safe(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(value) for value in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def gradient_ratio(norms: list[float]) -> float:
    """|dLoss/dh_1| / |dLoss/dh_T|: ~1 means the first step still gets gradient, << 1 means it vanished."""
    first, last = norms[0], norms[-1]
    return float(first / last) if first is not None and last else float("nan")


def _fmt(value: float | None, spec: str) -> str:
    return "nan" if value is None else format(value, spec)


def markdown_table(rows: list[dict], cfg: Config) -> str:
    lines = [
        f"Solved = at least {cfg.sweep.solve_fraction:.0%} of {cfg.data.validation_size} validation sequences correct "
        "(adding: |error| < 0.04; temporal order: right class). Budget per run: "
        f"{cfg.sweep.max_steps} steps of {cfg.train.batch_size} sequences"
        + (f" or {cfg.sweep.max_seconds_per_run:g} s" if cfg.sweep.max_seconds_per_run else "") + ".",
        "Gradient ratio = |dLoss/dh_1| / |dLoss/dh_T| at initialisation -> after training.",
        "",
        "| task | T | cell | clipnorm | status | steps to solve | steps run | final metric "
        "| input-blind baseline | loss (baseline) | seconds | gradient ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        final = row["final"]
        loss_name = "mse" if "mse" in final else "crossentropy"
        baseline = row["baseline"]
        lines.append(
            f"| {row['task']} | {row['length']} | {row['cell']} | {row['clipnorm']:g} | {row['status']} "
            f"| {row['steps_to_solve'] if row['steps_to_solve'] is not None else '-'} | {row['steps_run']} "
            f"| {row['metric']} = {_fmt(final[row['metric']], '.3f')} | {baseline[row['metric']]:.3f} "
            f"| {loss_name} = {_fmt(final[loss_name], '.4f')} ({baseline[loss_name]:.4f}) | {row['seconds']:.0f} "
            f"| {gradient_ratio(row['gradient_norms_init']):.1e} -> {gradient_ratio(row['gradient_norms_trained']):.1e} |"
        )
    lines.append("")
    lines.append("Input-blind baseline: always 0.5 (adding) or uniform class probabilities (temporal order), "
                 "scored on the same validation set.")
    return "\n".join(lines) + "\n"


def _grid(rows: list[dict]) -> tuple[list, list]:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lengths = list(dict.fromkeys(r["length"] for r in rows))
    return tasks, lengths


def plot_learning_curves(rows: list[dict], solve_fraction: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, lengths = _grid(rows)
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    colors = {cell: f"C{i}" for i, cell in enumerate(cells)}
    clips = sorted({r["clipnorm"] for r in rows})
    styles = {clip: ("-" if clip else "--") for clip in clips}
    fig, axes = plt.subplots(len(tasks), len(lengths), figsize=(5 * len(lengths), 3.6 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        for j, length in enumerate(lengths):
            ax = axes[i][j]
            for row in (r for r in rows if r["task"] == task and r["length"] == length):
                label = f"{row['cell']} clip={row['clipnorm']:g}"
                values = np.asarray(row["curve"][row["metric"]], dtype=float)  # null (diverged) -> NaN gap
                ax.plot(row["curve"]["step"], values, styles[row["clipnorm"]],
                        color=colors[row["cell"]], label=label)
                metric, baseline = row["metric"], row["baseline"][row["metric"]]
            ax.axhline(solve_fraction, color="gray", lw=0.8, ls=":", label="solved")
            ax.axhline(baseline, color="black", lw=0.8, ls="-.", label="input-blind baseline")
            ax.set_title(f"{task}, T={length}")
            ax.set_xlabel("training step")
            ax.set_ylabel(metric)
            ax.set_ylim(0, 1.02)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gradient_flow(rows: list[dict], path: Path) -> Path:
    """|dLoss/dh_t| over t per cell, at initialisation and after training (largest clipnorm's runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, lengths = _grid(rows)
    clip = max(r["clipnorm"] for r in rows)
    panels = [(t, n) for t in tasks for n in lengths]
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.4 * len(panels)), squeeze=False)
    for k, (task, length) in enumerate(panels):
        for col, key in enumerate(("gradient_norms_init", "gradient_norms_trained")):
            ax = axes[k][col]
            for i, row in enumerate(r for r in rows if r["task"] == task and r["length"] == length and r["clipnorm"] == clip):
                norms = np.asarray(row[key], dtype=float)
                ax.semilogy(np.arange(1, len(norms) + 1), np.maximum(norms, 1e-30), color=f"C{i}", label=row["cell"])
            ax.set_title(f"{task}, T={length}: {'at initialisation' if col == 0 else f'after training (clip={clip:g})'}")
            ax.set_xlabel("time step t (loss at t = T)")
            ax.set_ylabel("mean |dLoss/dh_t|")
    axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_model_dir(folder: Path, model: keras.Model, cfg: Config, row: dict, sample: np.ndarray) -> None:
    """A per-run folder that `common.inspect` can open (config.json + model.keras + an input)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder / "model.keras"))
    write_json(folder / "config.json", {"sweep_config": dataclasses.asdict(cfg),
                                        **{k: row[k] for k in ("task", "length", "cell", "clipnorm", "status")}})
    np.save(folder / "sample_input.npy", sample)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("Long-time-lag experiments: SimpleRNN vs LSTM vs GRU vs LSTM without forget gate", PRESETS)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing finished run dir")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(PRESETS, args.config, args.set)
        validate(cfg)
        with RunDir(args.run_dir, overwrite=args.overwrite) as run:
            print("\n".join(describe(cfg)))
            save_config(cfg, run.path / "config.json")
            rows: list[dict] = []
            for task in cfg.data.tasks:
                spec = get_task(task)
                for length in cfg.data.lengths:
                    validation = spec.generate(np.random.default_rng(cfg.data.seed), cfg.data.validation_size, length)
                    for cell in cfg.model.cells:
                        for clipnorm in cfg.sweep.clipnorms:
                            row, model = train_one(spec, length, cell, clipnorm, cfg, validation)
                            rows.append(row)
                            save_model_dir(run.path / "models" / row["run"], model, cfg, row, validation[0][:4])
                            final = _fmt(row["final"][row["metric"]], ".3f")
                            print(f"{row['run']}: {row['status']} after {row['steps_run']} steps, "
                                  f"{row['metric']}={final} ({row['seconds']:.0f} s)", flush=True)
                            run.write_json("results.json", {"config": dataclasses.asdict(cfg), "runs": rows})
                            keras.backend.clear_session()
            (run.path / "results.md").write_text(markdown_table(rows, cfg))
            plot_learning_curves(rows, cfg.sweep.solve_fraction, run.path / "learning_curves.png")
            plot_gradient_flow(rows, run.path / "gradient_flow.png")
        solved = sum(r["solved"] for r in rows)
        print((Path(args.run_dir) / "results.md").read_text())
        print_summary("Experiments", Path(args.run_dir), {"runs": len(rows), "solved": solved},
                      ["results.md", "results.json", "learning_curves.png", "gradient_flow.png", "models"])
    except USER_ERRORS as err:
        return report_user_error(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
