"""Runs the long-time-lag sweep: tasks x lengths x cell variants x clipping x seeds, and writes the results.

    make experiments                                                                      # the default preset (T=100)
    KERAS_BACKEND=jax python -m apps.experiments.run --config default --run-dir runs/experiments
    KERAS_BACKEND=jax python -m apps.experiments.run --config long --run-dir runs/experiments-long   # T=500, 1000
    KERAS_BACKEND=jax python -m apps.experiments.run --config tiny --run-dir /tmp/exp                # seconds, for tests

JAX only: training is a compiled loop (apps/experiments/loop.py); this module makes JAX the
backend when KERAS_BACKEND is unset and stops with a message under any other backend.

Every run trains one recurrent layer + head on fresh random batches (infinite data, as in
Hochreiter & Schmidhuber 1997) and checks a fixed validation set every `sweep.eval_every`
steps; it stops once solved (see below), diverged (non-finite loss) or out of its step budget.
The runs of one (task, T, variant) - every clipnorm x seed - train together, vmapped, and a
solved run leaves the group. Before and after training the runner measures ||dLoss/dh_t|| for
every t (apps/experiments/gradients.py) and records the gates of one validation sequence.

"Solved" follows the paper's per-sequence criteria on a held-out set:
adding - the share of validation sequences with absolute error < 0.04 is at least
`sweep.solve_fraction` (paper: every one of the last 2000 training sequences);
temporal order - validation accuracy is at least `sweep.solve_fraction`.

Run dir: `config.json`; `results.json` (one row per run: status, steps/sequences to solve, learning
curve, gradient norms; one row per group: wall time, steps/s); `summary.md` (per variant and
clipnorm over seeds, against the paper) and `results.md` (per run); `ledger.jsonl` (the same as docs/results.jsonl rows); `traces.npz` (loss and
gradient norm of every training step of every run); plots `learning_curves.png`,
`gradient_flow.png` (||dL/dh_t|| vs t), `grad_norms.png` (global gradient norm per step),
`keep_gates_<task>_T<T>.png` (forget/update gate of every unit over the sequence, at init and
trained, chrono vs default), `gates_<run>.png` (`common.gates` heatmaps of a solved model at the
longest T); `models/<run>/{model.keras,config.json,sample_input.npy}`, each a run dir that
`python -m common.gates` opens.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # the compiled loop is JAX; set before keras is imported

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from apps.experiments.config import PRESETS, Config  # noqa: E402
from apps.experiments.loop import GroupTrainer, require_jax  # noqa: E402
from apps.experiments.model import VARIANTS, build_model, parse_variant  # noqa: E402
from apps.experiments.tasks import TASKS, TaskSpec, baseline_predictions, get_task, score  # noqa: E402
from common.config import ConfigError, build_parser, describe, resolve_config  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.rundir import write_json  # noqa: E402
from common.rundir import RunDir  # noqa: E402

# Sequences the 1997 LSTM needed on average (Hochreiter & Schmidhuber 1997, Tables 7 and 8);
# the temporal order figure is experiment 6a, whose sequences have lengths 100-110.
PAPER_SEQUENCES = {("adding", 100): 74_000, ("adding", 500): 209_000, ("adding", 1000): 853_000,
                   ("temporal_order", 100): 31_390}
PLOTS = ("learning_curves.png", "gradient_flow.png", "grad_norms.png")


def validate(cfg: Config) -> None:
    """Raises ConfigError for a sweep that cannot run, naming the bad value."""
    for task in cfg.data.tasks:
        if task not in TASKS:
            raise ConfigError(f"data.tasks: unknown task {task!r}; choose from {', '.join(TASKS)}")
    for variant in cfg.model.cells:
        if variant not in VARIANTS:
            raise ConfigError(f"model.cells: unknown cell variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if not cfg.data.tasks or not cfg.data.lengths or not cfg.model.cells:
        raise ConfigError("data.tasks, data.lengths and model.cells must each name at least one value")
    if len(set(cfg.model.cells)) != len(cfg.model.cells):
        raise ConfigError(f"model.cells names a variant twice: {cfg.model.cells}")
    if min(cfg.data.lengths) < 20:
        raise ConfigError(f"data.lengths must all be >= 20 (the tasks place markers at 10% and 50% of T), got {cfg.data.lengths}")
    if cfg.sweep.eval_every % cfg.sweep.steps_per_call:
        raise ConfigError(f"sweep.steps_per_call ({cfg.sweep.steps_per_call}) must divide sweep.eval_every "
                          f"({cfg.sweep.eval_every}): validation runs between compiled calls")


def run_name(task: str, length: int, variant: str, clipnorm: float, seed: int) -> str:
    return f"{task}_T{length}_{variant}_clip{clipnorm:g}_seed{seed}"


def make_optimizer_factory(cfg: Config):
    opt = cfg.optimizer

    def make():
        if opt.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=opt.learning_rate)
        return keras.optimizers.SGD(learning_rate=opt.learning_rate)

    return make


def relevant_steps(task: str, x: np.ndarray) -> np.ndarray:
    """Positions that decide the target in one sequence `x [T, F]`: the marked pairs / the X-Y symbols."""
    if task == "adding":
        return np.flatnonzero(x[:, 1] == 1.0)
    return np.flatnonzero(x[:, 6:].sum(-1) > 0)  # symbols X and Y are the last two of the one-hot alphabet


def keep_gate_trace(model: keras.Model, x: np.ndarray) -> dict | None:
    """Keep gate (LSTM forget, GRU update z) and state of every unit over time for one sequence, or None."""
    from common.gates import InspectError, inspect_layer

    try:
        result = inspect_layer(model, x[None])
    except InspectError:
        return None
    if result.kind == "lstm":
        return {"gate": result.traces["forget_gate"][0], "state": result.traces["cell_state"][0],
                "gate_name": "forget gate f", "state_name": "cell state c"}
    if result.kind == "gru":
        return {"gate": result.traces["update_gate"][0], "state": result.traces["hidden_state"][0],
                "gate_name": "update gate z (keeps h)", "state_name": "hidden state h"}
    return None


def train_group(spec: TaskSpec, length: int, variant: str, cfg: Config,
                validation: tuple[np.ndarray, np.ndarray]) -> tuple[list[dict], list[keras.Model], dict, dict]:
    """Trains every (clipnorm, seed) run of one variant together; returns rows, models, per-step traces, group row."""
    members = [(clip, seed) for seed in cfg.sweep.seeds for clip in cfg.sweep.clipnorms]
    models = []
    for _, seed in members:
        keras.utils.set_random_seed(seed)  # same seed, same initial weights for every clipnorm
        models.append(build_model(variant, cfg.model.units, length, spec.input_dim, spec.output_dim, spec.loss,
                                  t_max=cfg.model.chrono_t_max, recurrent_scale=cfg.model.recurrent_scale))
    x_val, y_val = validation
    probe_x, probe_y = x_val[: cfg.sweep.gradient_batch], y_val[: cfg.sweep.gradient_batch]
    from apps.experiments.gradients import HiddenGradientProbe

    probe = HiddenGradientProbe(models[0], spec.loss)
    init_values = [[np.asarray(v.value) for v in m.trainable_variables] for m in models]
    gradients_init = [probe(values, probe_x, probe_y) for values in init_values]
    gates_init = keep_gate_trace(models[0], x_val[0])  # members share the architecture; plot the first
    trainer = GroupTrainer(models, spec.loss, make_optimizer_factory(cfg), [clip for clip, _ in members])

    seeds = list(cfg.sweep.seeds)
    streams = {seed: np.random.default_rng([1, seed]) for seed in seeds}  # never the validation stream
    batch = cfg.optimizer.batch_size
    n = len(members)
    curves = [{"step": [], "train_loss": [], "grad_norm_mean": [], "grad_norm_max": []} for _ in range(n)]
    losses = [[] for _ in range(n)]
    norms = [[] for _ in range(n)]
    status = ["budget"] * n
    steps_run = [0] * n
    solved_at: list[int | None] = [None] * n
    seconds_at: list[float | None] = [None] * n
    final: list[dict] = [{} for _ in range(n)]
    train_seconds = eval_seconds = compile_seconds = 0.0
    member_steps = 0

    def evaluate(step: int) -> None:
        nonlocal eval_seconds
        started = time.perf_counter()
        predictions = trainer.predict(x_val)
        eval_seconds += time.perf_counter() - started
        for j, member in enumerate(trainer.live):
            metrics = score(spec.name, predictions[j], y_val)
            final[member] = metrics
            curve = curves[member]
            recent_loss, recent_norm = losses[member][-cfg.sweep.eval_every:], norms[member][-cfg.sweep.eval_every:]
            curve["step"].append(step)
            curve["train_loss"].append(float(np.mean(recent_loss)) if step else None)
            curve["grad_norm_mean"].append(float(np.mean(recent_norm)) if step else None)
            curve["grad_norm_max"].append(float(np.max(recent_norm)) if step else None)
            for key, value in metrics.items():
                curve.setdefault(key, []).append(value)

    start = time.perf_counter()
    evaluate(0)
    step = 0
    while trainer.live and step < cfg.sweep.max_steps:
        k = min(cfg.sweep.steps_per_call, cfg.sweep.max_steps - step)
        live_seeds = sorted({members[m][1] for m in trainer.live}, key=seeds.index)
        xs, ys = [], []
        for seed in live_seeds:
            pairs = [spec.generate(streams[seed], batch, length) for _ in range(k)]
            xs.append(np.stack([p[0] for p in pairs]))
            ys.append(np.stack([p[1] for p in pairs]))
        for seed in set(seeds) - set(live_seeds):  # keep every seed's stream where it would be
            for _ in range(k):
                spec.generate(streams[seed], batch, length)
        member_data = [live_seeds.index(members[m][1]) for m in trainer.live]
        started = time.perf_counter()
        first_call = step == 0
        chunk_losses, chunk_norms = trainer.train(np.stack(xs), np.stack(ys), member_data)
        elapsed = time.perf_counter() - started
        if first_call:
            compile_seconds = elapsed  # compile + the first call's steps
        else:
            train_seconds += elapsed
            member_steps += k * len(trainer.live)
        step += k
        diverged = []
        for j, member in enumerate(trainer.live):
            losses[member].extend(chunk_losses[j].tolist())
            norms[member].extend(chunk_norms[j].tolist())
            steps_run[member] = step
            if not np.all(np.isfinite(chunk_losses[j])):
                status[member] = "diverged"
                steps_run[member] = step - k + int(np.argmin(np.isfinite(chunk_losses[j]))) + 1
                diverged.append(member)
        trainer.retire(diverged)
        if step % cfg.sweep.eval_every == 0 or step == cfg.sweep.max_steps:
            evaluate(step)
            solved = [m for m in trainer.live if final[m][spec.metric] >= cfg.sweep.solve_fraction]
            for member in solved:
                status[member], solved_at[member] = "solved", step
                seconds_at[member] = round(time.perf_counter() - start, 1)
            trainer.retire(solved)
    wall = time.perf_counter() - start
    trainer.write_back()
    gradients_trained = [probe(trainer.member_values(i), probe_x, probe_y) if status[i] != "diverged"
                         else np.full(length, np.nan) for i in range(n)]
    # The keep-gate plot shows the first run of the largest clipnorm (as the gradient-flow plot does).
    shown = max(range(n), key=lambda i: (members[i][0], -i))
    gates_trained = keep_gate_trace(models[shown], x_val[0]) if status[shown] != "diverged" else None
    baseline = score(spec.name, baseline_predictions(spec.name, len(y_val)), y_val)
    cell, init = parse_variant(variant)
    rows = []
    for i, (clip, seed) in enumerate(members):
        rows.append(_json_safe({
            "run": run_name(spec.name, length, variant, clip, seed),
            "task": spec.name, "length": length, "cell": variant, "base_cell": cell, "init": init,
            "clipnorm": float(clip), "seed": int(seed), "status": status[i], "solved": status[i] == "solved",
            "steps_to_solve": solved_at[i],
            "sequences_to_solve": None if solved_at[i] is None else solved_at[i] * batch,
            "group_seconds_to_solve": seconds_at[i],
            "steps_run": steps_run[i], "metric": spec.metric, "final": final[i], "baseline": baseline,
            "best": max(curves[i][spec.metric], key=lambda v: -math.inf if v is None else v),
            "max_grad_norm": float(np.nanmax(norms[i])) if norms[i] and np.any(np.isfinite(norms[i])) else None,
            "curve": curves[i],
            "gradient_norms_init": gradients_init[i].tolist(),
            "gradient_norms_trained": gradients_trained[i].tolist(),
        }))
    group = {
        "task": spec.name, "length": length, "cell": variant, "runs": n, "wall_seconds": round(wall, 1),
        "compile_seconds": round(compile_seconds, 1), "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1), "member_steps_timed": member_steps,
        "member_steps_per_second": round(member_steps / train_seconds, 2) if train_seconds else None,
    }
    traces = {"loss": [np.asarray(v, dtype="float32") for v in losses],
              "grad_norm": [np.asarray(v, dtype="float32") for v in norms],
              "gates_init": gates_init, "gates_trained": gates_trained, "gates_shown": shown}
    return rows, models, traces, group


def _json_safe(obj):
    """NaN/inf (a diverged run) become null, so results.json stays standard JSON."""
    if isinstance(obj, dict):
        return {key: _json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(value) for value in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def gradient_ratio(norms: list[float]) -> float:
    """||dLoss/dh_1|| / ||dLoss/dh_T||: ~1 means the first step still gets gradient, << 1 means it vanished."""
    first, last = norms[0], norms[-1]
    return float(first / last) if first is not None and last else float("nan")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _budget_line(cfg: Config) -> str:
    return (f"Solved = at least {cfg.sweep.solve_fraction:.0%} of {cfg.data.validation_size} held-out sequences correct "
            "(adding: |error| < 0.04; temporal order: right class), checked every "
            f"{cfg.sweep.eval_every} steps. Budget per run: {cfg.sweep.max_steps} steps of {cfg.optimizer.batch_size} "
            f"sequences ({cfg.optimizer.optimizer}, lr {cfg.optimizer.learning_rate:g}, {cfg.model.units} units).")


def summary_table(rows: list[dict], cfg: Config, seconds: float | None = None, workers: int = 1) -> str:
    """One line per (task, T, variant, clipnorm) over seeds, against the paper's sequences to solve."""
    wall = [] if seconds is None else [f"Sweep wall time {seconds:.0f} s on {workers} worker process"
                                       f"{'es' if workers > 1 else ''} ({len(rows)} runs)."]
    lines = [_budget_line(cfg), *wall, "",
             "| task | T | cell | clip | solved (seeds) | steps to solve (median) | sequences to solve | paper (1997 LSTM) "
             "| final metric (mean) | input-blind baseline |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["task"], r["length"], r["cell"], r["clipnorm"]) for r in rows))
    for task, length, cell, clip in keys:
        group = [r for r in rows if (r["task"], r["length"], r["cell"], r["clipnorm"]) == (task, length, cell, clip)]
        solved = [r for r in group if r["solved"]]
        steps = sorted(r["steps_to_solve"] for r in solved)
        median = float(np.median(steps)) if steps else None
        values = [r["final"].get(r["metric"]) for r in group]
        values = [v for v in values if v is not None]
        diverged = sum(r["status"] == "diverged" for r in group)
        paper = PAPER_SEQUENCES.get((task, length))
        solved_text = f"{len(solved)}/{len(group)}" + (f" ({diverged} diverged)" if diverged else "")
        lines.append(
            f"| {task} | {length} | {cell} | {clip:g} | {solved_text} "
            f"| {_fmt(median, ',.0f')}" + (f" ({', '.join(f'{s:,}' for s in steps)})" if len(steps) > 1 else "")
            + f" | {_fmt(None if median is None else median * cfg.optimizer.batch_size, ',.0f')} "
            f"| {_fmt(paper, ',')} | {group[0]['metric']} = {_fmt(float(np.mean(values)) if values else None, '.3f')} "
            f"| {group[0]['baseline'][group[0]['metric']]:.3f} |")
    lines.append("")
    lines.append("Steps to solve are multiples of the validation interval; sequences = steps x batch size. Paper: "
                 "average sequences the 1997 LSTM needed (adding T=100/500/1000: 74k/209k/853k; temporal order 6a: 31k).")
    return "\n".join(lines) + "\n"


def markdown_table(rows: list[dict], groups: list[dict], cfg: Config) -> str:
    lines = [
        _budget_line(cfg),
        "Gradient ratio = ||dLoss/dh_1|| / ||dLoss/dh_T|| at initialisation -> after training; "
        "max grad norm = largest global gradient norm of any step (before clipping).",
        "",
        "| task | T | cell | clip | seed | status | steps to solve | steps run | final metric "
        "| baseline | loss (baseline) | max grad norm | gradient ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        final = row["final"]
        loss_name = "mse" if "mse" in row["baseline"] else "crossentropy"
        lines.append(
            f"| {row['task']} | {row['length']} | {row['cell']} | {row['clipnorm']:g} | {row['seed']} | {row['status']} "
            f"| {_fmt(row['steps_to_solve'], 'd')} | {row['steps_run']} "
            f"| {row['metric']} = {_fmt(final.get(row['metric']), '.3f')} | {row['baseline'][row['metric']]:.3f} "
            f"| {loss_name} = {_fmt(final.get(loss_name), '.4f')} ({row['baseline'][loss_name]:.4f}) "
            f"| {_fmt(row['max_grad_norm'], '.3g')} "
            f"| {gradient_ratio(row['gradient_norms_init']):.1e} -> {gradient_ratio(row['gradient_norms_trained']):.1e} |"
        )
    lines += ["", "Throughput (each group trains its runs together; member-steps/s excludes the first, compiling call "
              "and validation):", "",
              "| task | T | cell | runs | wall s | compile s | eval s | member-steps/s |", "|---|---|---|---|---|---|---|---|"]
    for g in groups:
        lines.append(f"| {g['task']} | {g['length']} | {g['cell']} | {g['runs']} | {g['wall_seconds']:.0f} "
                     f"| {g['compile_seconds']:.0f} | {g['eval_seconds']:.0f} | {_fmt(g['member_steps_per_second'], '.1f')} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(rows: list[dict]) -> list[tuple[str, int]]:
    return list(dict.fromkeys((r["task"], r["length"]) for r in rows))


def _style(rows: list[dict]):
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    first_seed = rows[0]["seed"]
    colors = {cell: f"C{i}" for i, cell in enumerate(cells)}
    return cells, colors, first_seed


def plot_learning_curves(rows: list[dict], solve_fraction: float, path: Path) -> Path:
    plt = _pyplot()
    panels = _panels(rows)
    _, colors, first_seed = _style(rows)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.6 * len(panels)), squeeze=False)
    for ax, (task, length) in zip(axes[:, 0], panels):
        for row in (r for r in rows if r["task"] == task and r["length"] == length):
            values = np.asarray([np.nan if v is None else v for v in row["curve"][row["metric"]]], dtype=float)
            first = row["seed"] == first_seed
            ax.plot(row["curve"]["step"], values, "-" if row["clipnorm"] else "--", color=colors[row["cell"]],
                    lw=1.5 if first else 0.7, alpha=1.0 if first else 0.5,
                    label=f"{row['cell']} clip={row['clipnorm']:g}" if first else None)
            metric, baseline = row["metric"], row["baseline"][row["metric"]]
        ax.axhline(solve_fraction, color="gray", lw=0.8, ls=":", label="solved")
        ax.axhline(baseline, color="black", lw=0.8, ls="-.", label="input-blind baseline")
        ax.set_title(f"{task}, T={length} (thin: other seeds; dashed: no clipping)")
        ax.set_xlabel("training step")
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gradient_flow(rows: list[dict], path: Path) -> Path:
    """||dLoss/dh_t|| over t per cell variant, at initialisation and after training (first seed, largest clipnorm)."""
    plt = _pyplot()
    panels = _panels(rows)
    _, colors, first_seed = _style(rows)
    clip = max(r["clipnorm"] for r in rows)
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.6 * len(panels)), squeeze=False, sharey="row")
    for k, (task, length) in enumerate(panels):
        chosen = [r for r in rows if r["task"] == task and r["length"] == length and r["clipnorm"] == clip
                  and r["seed"] == first_seed]
        for col, key in enumerate(("gradient_norms_init", "gradient_norms_trained")):
            ax = axes[k][col]
            for row in chosen:
                norms = np.asarray([np.nan if v is None else v for v in row[key]], dtype=float)
                label = row["cell"] + ("" if col == 0 else f" ({row['status']})")
                ax.semilogy(np.arange(1, len(norms) + 1), np.maximum(norms, 1e-38), color=colors[row["cell"]], label=label)
            when = "at initialisation" if col == 0 else f"after training (clip={clip:g})"
            ax.set_title(f"{task}, T={length}: {when}")
            ax.set_xlabel("time step t (the loss is at t = T)")
            ax.set_ylabel("mean ||dLoss/dh_t|| (1e-38: underflow to 0)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_grad_norms(rows: list[dict], traces: dict[str, np.ndarray], path: Path) -> Path:
    """The global gradient norm (before clipping) of every training step; the clip thresholds as lines."""
    plt = _pyplot()
    panels = _panels(rows)
    _, colors, first_seed = _style(rows)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for ax, (task, length) in zip(axes[:, 0], panels):
        for row in (r for r in rows if r["task"] == task and r["length"] == length and r["seed"] == first_seed):
            norms = traces[f"{row['run']}/grad_norm"]
            ax.semilogy(np.arange(1, len(norms) + 1), norms, "-" if row["clipnorm"] else "--", lw=0.6,
                        color=colors[row["cell"]], alpha=0.8,
                        label=f"{row['cell']} clip={row['clipnorm']:g} ({row['status']})")
        for clip in sorted({r["clipnorm"] for r in rows if r["clipnorm"] > 0}):
            ax.axhline(clip, color="gray", lw=0.8, ls=":")
        ax.set_title(f"{task}, T={length}: global gradient norm per step, before clipping (dotted: clip threshold)")
        ax.set_xlabel("training step")
        ax.set_ylabel("||dLoss/dW||")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_keep_gates(task: str, length: int, entries: list[tuple[str, dict, dict | None]], example: np.ndarray,
                    path: Path) -> Path:
    """Per variant: keep gate of every unit over t at init and after training, the state after training, and
    how much of the state written at the first relevant input is still there at t (the product of keep gates)."""
    plt = _pyplot()
    marks = relevant_steps(task, example)
    first = int(marks[0]) if len(marks) else 0
    fig, axes = plt.subplots(len(entries), 4, figsize=(19, 2.8 * len(entries)), squeeze=False, sharex=True)
    t = np.arange(1, length + 1)
    for k, (label, init, trained) in enumerate(entries):
        panels = [(init, "gate", "at initialisation"), (trained, "gate", "after training"),
                  (trained, "state", "after training"), (trained, "kept", "after training")]
        for col, (trace, key, when) in enumerate(panels):
            ax = axes[k][col]
            if trace is None:
                ax.set_axis_off()
                continue
            if key == "kept":
                # prod_{s = first+1..t} gate_s: the factor by which the carousel scales what it held at `first`.
                kept = np.cumprod(trace["gate"][first + 1:].astype("float64"), axis=0)
                ax.semilogy(t[first + 1:], np.maximum(kept, 1e-30), lw=0.5, alpha=0.6)
                ax.semilogy(t[first + 1:], np.maximum(np.exp(np.log(np.maximum(kept, 1e-300)).mean(axis=1)), 1e-30),
                            color="black", lw=1.5, label="geometric mean")
                ax.set_ylim(1e-30, 2)
                ax.legend(fontsize=7, loc="lower left")
                title = f"{label}: share of the state at t={first + 1} still kept at t"
            else:
                values = trace[key]  # [T, units]
                ax.plot(t, values, lw=0.5, alpha=0.6)
                if key == "gate":
                    ax.plot(t, values.mean(axis=1), color="black", lw=1.5, label="mean over units")
                    ax.set_ylim(0, 1.02)
                    ax.legend(fontsize=7, loc="lower right")
                title = f"{label}: {trace[key + '_name']} {when}"
            for m in marks:
                ax.axvline(m + 1, color="red", lw=0.8, ls=":")
            ax.set_title(title, fontsize=8)
            if k == len(entries) - 1:
                ax.set_xlabel("time step t (red: the inputs that decide the target)")
    fig.suptitle(f"{task}, T={length}: every unit over one validation sequence", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_model_dir(folder: Path, model: keras.Model, cfg: Config, row: dict, sample: np.ndarray) -> None:
    """A per-run folder that `common.gates` can open (config.json + model.keras + an input)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder / "model.keras"))
    write_json(folder / "config.json", {"sweep_config": dataclasses.asdict(cfg),
                                        **{k: row[k] for k in ("task", "length", "cell", "clipnorm", "seed", "status")}})
    np.save(folder / "sample_input.npy", sample)


def _group_jobs(cfg: Config) -> list[tuple[str, int, str]]:
    """Every (task, T, variant) group in table order."""
    return [(task, length, variant) for task in cfg.data.tasks for length in cfg.data.lengths
            for variant in cfg.model.cells]


def _worker_count(cfg: Config, jobs: int) -> int:
    wanted = cfg.sweep.workers or (os.cpu_count() or 1)
    return max(1, min(wanted, jobs))


def run_group_job(job: tuple[str, int, str], cfg: Config, models_dir: str) -> dict:
    """Trains one group and saves its model dirs; returns picklable rows, traces and the group row.

    Runs in the main process (`sweep.workers=1`) or in a spawned worker (fresh JAX, same code).
    """
    task, length, variant = job
    spec = get_task(task)
    validation = spec.generate(np.random.default_rng(cfg.data.seed), cfg.data.validation_size, length)
    rows, models, traces, group = train_group(spec, length, variant, cfg, validation)
    lines = []
    for row, model in zip(rows, models):
        save_model_dir(Path(models_dir) / row["run"], model, cfg, row, validation[0][:4])
        lines.append(f"{row['run']}: {row['status']} after {row['steps_run']} steps, "
                     f"{row['metric']}={_fmt(row['final'].get(row['metric']), '.3f')}")
    lines.append(f"  group {task} T={length} {variant}: {group['runs']} runs, {group['wall_seconds']:.0f} s wall "
                 f"({group['compile_seconds']:.0f} s first call), "
                 f"{_fmt(group['member_steps_per_second'], '.1f')} member-steps/s")
    keep = None
    if traces["gates_init"] is not None:
        shown = rows[traces["gates_shown"]]
        keep = (f"{variant} (clip {shown['clipnorm']:g}, seed {shown['seed']}, {shown['status']})",
                traces["gates_init"], traces["gates_trained"])
    keras.backend.clear_session()
    return {"job": job, "rows": rows, "group": group, "keep": keep, "lines": lines,
            "loss": traces["loss"], "grad_norm": traces["grad_norm"], "example": validation[0][0]}


def _init_worker() -> None:
    os.environ["KERAS_BACKEND"] = "jax"
    # One XLA thread per worker: the workers are the parallelism (one per core).
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_cpu_multi_thread_eigen" not in flags:  # keep whatever else the user set
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def run_groups(cfg: Config, models_dir: Path, on_result) -> None:
    """Runs every group, longest sequences first across `sweep.workers` processes; calls `on_result(result)`."""
    jobs = _group_jobs(cfg)
    workers = _worker_count(cfg, len(jobs))
    if workers == 1:
        for job in jobs:
            on_result(run_group_job(job, cfg, str(models_dir)))
        return
    import concurrent.futures
    import multiprocessing

    order = sorted(jobs, key=lambda j: -j[1])  # the longest (slowest) groups start first
    context = multiprocessing.get_context("spawn")  # a fresh JAX per worker (fork after JAX start-up deadlocks)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures = [pool.submit(run_group_job, job, cfg, str(models_dir)) for job in order]
        try:
            for future in concurrent.futures.as_completed(futures):
                on_result(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("Long-time-lag experiments: LSTM (chrono / default init) vs GRU vs SimpleRNN vs the 1997 LSTM",
                          PRESETS)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing finished run dir")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(PRESETS, args.config, args.set)
        validate(cfg)
        require_jax()
        with RunDir(args.run_dir, app="experiments", config=dataclasses.asdict(cfg), overwrite=args.overwrite) as run:
            print("\n".join(describe(cfg)))
            jobs = _group_jobs(cfg)
            workers = _worker_count(cfg, len(jobs))
            print(f"backend: jax ({keras.backend.backend()}); {cfg.sweep.steps_per_call} training steps per compiled call; "
                  f"{len(jobs)} groups on {workers} worker process{'es' if workers > 1 else ''}", flush=True)
            results: dict[tuple, dict] = {}
            sweep_start = time.perf_counter()

            def on_result(result: dict) -> None:
                results[result["job"]] = result
                print("\n".join(result["lines"]) + f"  [{len(results)}/{len(jobs)} groups, "
                      f"{time.perf_counter() - sweep_start:.0f} s]", flush=True)
                done = [results[j] for j in jobs if j in results]
                run.write_json("results.json", {"config": dataclasses.asdict(cfg),
                                                "runs": [r for res in done for r in res["rows"]],
                                                "groups": [res["group"] for res in done]})

            run_groups(cfg, run.path / "models", on_result)
            ordered = [results[j] for j in jobs]  # table order, whatever order the workers finished in
            rows = [r for res in ordered for r in res["rows"]]
            groups = [res["group"] for res in ordered]
            traces: dict[str, np.ndarray] = {}
            for res in ordered:
                for i, row in enumerate(res["rows"]):
                    traces[f"{row['run']}/loss"] = res["loss"][i]
                    traces[f"{row['run']}/grad_norm"] = res["grad_norm"][i]
            keep_gate_plots, gate_plots = [], []
            for task in cfg.data.tasks:
                for length in cfg.data.lengths:
                    entries = [results[(task, length, v)] for v in cfg.model.cells]
                    keep_entries = [res["keep"] for res in entries if res["keep"] is not None]
                    if keep_entries:
                        name = f"keep_gates_{task}_T{length}.png"
                        plot_keep_gates(task, length, keep_entries, entries[0]["example"], run.path / name)
                        keep_gate_plots.append(name)
            longest = max(cfg.data.lengths)
            for task in cfg.data.tasks:
                solved = [r for r in rows if r["task"] == task and r["length"] == longest and r["solved"]]
                solved.sort(key=lambda r: (r["base_cell"] != "lstm", r["init"] != "chrono", r["steps_to_solve"]))
                if solved:
                    gate_plots.append(_plot_solved_gates(run.path, solved[0]))
            sweep_seconds = time.perf_counter() - sweep_start
            run.write_json("results.json", {"preset": args.config, "overrides": list(args.set or []),
                                            "config": dataclasses.asdict(cfg), "runs": rows, "groups": groups,
                                            "workers": workers, "wall_seconds": round(sweep_seconds, 1)})
            np.savez_compressed(run.path / "traces.npz", **traces)
            (run.path / "summary.md").write_text(summary_table(rows, cfg, sweep_seconds, workers))
            command = " ".join(["KERAS_BACKEND=jax python -m apps.experiments.run", "--config", args.config,
                                *[f"--set {shlex.quote(item)}" for item in args.set or []], "--run-dir", args.run_dir])
            ledger = ledger_rows(rows, groups, cfg, args.config, list(args.set or []), command, sweep_seconds, workers)
            (run.path / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
            (run.path / "results.md").write_text(markdown_table(rows, groups, cfg))
            plot_learning_curves(rows, cfg.sweep.solve_fraction, run.path / "learning_curves.png")
            plot_gradient_flow(rows, run.path / "gradient_flow.png")
            plot_grad_norms(rows, traces, run.path / "grad_norms.png")
        final = Path(args.run_dir)
        print((final / "summary.md").read_text())
        print(f"== Experiments: {sum(r['solved'] for r in rows)} of {len(rows)} runs solved; "
              f"sweep wall time {sweep_seconds:.0f} s on {workers} worker process{'es' if workers > 1 else ''} ==")
        print(f"Run dir: {final}")
        for name in ["summary.md", "results.md", "results.json", "ledger.jsonl", "traces.npz", *PLOTS, *keep_gate_plots,
                     *gate_plots, "models"]:
            print(f"  {final / name}")
    except (UserError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def ledger_rows(rows: list[dict], groups: list[dict], cfg: Config, preset: str, overrides: list[str], command: str,
                seconds: float, workers: int, machine: str = "CPU 2 cores") -> list[dict]:
    """The sweep's results as docs/results.jsonl rows (tools/check_results.py's format, `length` = T)."""
    import datetime

    date = datetime.date.today().isoformat()
    setting = " ".join([preset, *overrides])
    base = {"app": "experiments", "split": "validation", "command": command, "machine": machine, "date": date}
    out = []
    for row in rows:
        where = {"dataset": row["task"], "length": row["length"], "seed": row["seed"],
                 "setting": f"{setting} cell={row['cell']} clip={row['clipnorm']:g} steps<={cfg.sweep.max_steps}"}
        value = row["final"].get(row["metric"])
        if value is not None:
            out.append({**base, **where, "metric": row["metric"], "value": round(float(value), 4)})
        if row["solved"]:
            out.append({**base, **where, "metric": "steps_to_solve", "value": row["steps_to_solve"]})
    for group in groups:
        if group["member_steps_per_second"]:
            out.append({**base, "dataset": group["task"], "length": group["length"], "seed": None, "split": None,
                        "setting": f"{setting} cell={group['cell']} ({workers} workers side by side)",
                        "metric": "steps_per_s", "value": group["member_steps_per_second"]})
    out.append({**base, "dataset": "+".join(cfg.data.tasks), "seed": None, "split": None,
                "setting": f"{setting} ({workers} workers)", "metric": "seconds", "value": round(seconds, 1)})
    keys = ("app", "dataset", "split", "metric", "value", "seed", "setting", "command", "machine", "date", "length")
    return [{k: r[k] for k in keys if k in r} for r in out]


def _plot_solved_gates(run_path: Path, row: dict) -> str:
    """`common.gates`'s heatmaps for a solved model, on the first sample input of its model dir."""
    from common.gates import inspect_layer, plot_gates

    folder = run_path / "models" / row["run"]
    model = keras.models.load_model(folder / "model.keras")
    result = inspect_layer(model, np.load(folder / "sample_input.npy")[:1])
    name = f"gates_{row['run']}.png"
    plot_gates(result, run_path / name, title=f"{row['run']} (solved at step {row['steps_to_solve']}); "
                                               f"re-run max |error| {result.max_abs_error:.1e}")
    return name


if __name__ == "__main__":
    raise SystemExit(main())
