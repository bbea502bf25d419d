"""Scores a trained forecaster against the baselines on the test split.

Metrics (in `<run-dir>/eval/<split>/metrics.json`, and `metrics.json` at train time):
- `mse`/`mae` on the scaled data over every test window (stride 1) and channel: the
  benchmark convention of the ETT/Time-Series-Library tables;
- `mae_orig`/`smape`/`mase` on the original scale (MASE scaled by the in-sample
  seasonal-naive error of the training rows, per channel, then averaged);
- a rolling-origin backtest (`eval.backtest_windows` origins `eval.backtest_step` apart,
  ending at the last observation) and, for quantile models, interval/quantile coverage.
The same numbers are computed for naive, seasonal naive and DLinear beside the model.

Long format (`data.id_column`, many series, one global model): `evaluate_panel` scores each
series with its own scaler (`per_series`), then averages over every window (`test`, the pooled
numbers) and over series (`test_mean_over_series`); baselines likewise.

`model.kind=auto`: `select_model` compares the fitted network with the three baselines on the
validation split (scaled MSE) and keeps the better; when a baseline wins, model.keras becomes
that baseline as a small Keras model (`model.BaselineForecaster`), so forecast and export use
the choice. With `model.auto_blend=true` the averages `w * network + (1 - w) * DLinear` (w = 0.25, 0.5,
0.75) compete too: the best of them replaces the model chosen without them only when its validation gain
is significant (`model.auto_blend_p`, a paired t-test over blocks of windows one horizon long, `paired_gain_test`),
and a kept blend is saved as one model (`model.WeightedSum` over both).
`selection.json` and `metrics.json: selection` say what was compared and chosen.

    python -m apps.timeseries.evaluate --run-dir runs/forecast
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from apps.timeseries.baselines import DLinear, baseline_forecasts  # noqa: E402
from apps.timeseries.config import Config  # noqa: E402
from apps.timeseries.data import Series, Splits  # noqa: E402
from apps.timeseries.model import build_baseline_model, build_blend_model, network_kind, point_index  # noqa: E402
from apps.timeseries.panel import pool  # noqa: E402
from common.cli import evaluate_main  # noqa: E402
from common.rundir import write_json  # noqa: E402


BASELINES = ("naive", "seasonal_naive", "dlinear")


def predict(model, x, batch_size: int = 512) -> np.ndarray:
    """Forecasts for a window array or a `Windows.inputs` dict (window + covariates)."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def point_forecast(output: np.ndarray, quantiles) -> np.ndarray:
    """`[n, horizon, channels]` from a point or quantile output."""
    return output[..., point_index(quantiles)] if quantiles else output


def smape(y: np.ndarray, p: np.ndarray) -> float:
    denominator = np.abs(y) + np.abs(p)
    ratio = np.divide(2.0 * np.abs(y - p), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(100.0 * ratio.mean())


def mase_scale(train_values: np.ndarray, period: int) -> np.ndarray:
    """Per-channel in-sample MAE of the seasonal naive forecast (naive when the period does not fit)."""
    lag = period if 1 < period < len(train_values) else 1
    scale = np.abs(train_values[lag:] - train_values[:-lag]).mean(axis=0)
    return np.where(scale > 1e-12, scale, 1.0)


def score(y_scaled: np.ndarray, p_scaled: np.ndarray, splits: Splits, series: Series, scale: np.ndarray) -> dict:
    """Benchmark (scaled) and original-scale metrics for one set of forecasts."""
    y = splits.scaler.inverse(y_scaled.astype(np.float64))
    p = splits.scaler.inverse(p_scaled.astype(np.float64))
    target = series.target_index
    error = p_scaled.astype(np.float64) - y_scaled
    return {
        "mse": float(np.mean(error**2)),
        "mae": float(np.mean(np.abs(error))),
        "mae_orig": float(np.mean(np.abs(p - y))),
        "smape": smape(y, p),
        "mase": float(np.mean(np.abs(p - y).mean(axis=(0, 1)) / scale)),
        "target_mae_orig": float(np.mean(np.abs(p[..., target] - y[..., target]))),
    }


def coverage(y: np.ndarray, output: np.ndarray, quantiles) -> dict:
    """Share of targets below each predicted quantile, and inside the outermost interval."""
    below = {f"q{q:g}": float(np.mean(y <= output[..., i])) for i, q in enumerate(quantiles)}
    low, high = int(np.argmin(quantiles)), int(np.argmax(quantiles))
    inside = float(np.mean((y >= output[..., low]) & (y <= output[..., high])))
    return {"below_quantile": below, "interval": [min(quantiles), max(quantiles)],
            "interval_nominal": float(max(quantiles) - min(quantiles)), "interval_coverage": inside}


def backtest_origins(num_rows: int, cfg: Config) -> list[int]:
    """Forecast origins (index of the first forecast step), latest first, that fit the series."""
    step = cfg.eval.backtest_step or cfg.data.horizon
    last = num_rows - cfg.data.horizon
    origins = [last - k * step for k in range(cfg.eval.backtest_windows)]
    return [o for o in origins if o >= cfg.data.input_length]


def residual_quantiles(y: np.ndarray, p: np.ndarray, quantiles) -> np.ndarray:
    """`[horizon, channels, q]` quantiles of `y - p` over windows: a baseline's forecast band."""
    return np.stack([np.quantile(y - p, q, axis=0) for q in quantiles], axis=-1)


BLEND_WEIGHTS = (0.25, 0.5, 0.75)  # model.auto_blend: the network's weights tried against DLinear on validation


def window_mse(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each window's MSE (`[windows]`) of forecasts `p` against `y` (`[windows, horizon, ...]`)."""
    return np.square(p.astype(np.float64) - y).reshape(len(y), -1).mean(axis=1)


def paired_gain_test(errors: np.ndarray, reference: np.ndarray, block: int) -> dict:
    """One-sided paired t-test that `errors` (each window's MSE, in window order) are lower than `reference`'s.

    Stride-1 windows overlap, so neighbouring windows' errors are nearly the same number: the per-window
    differences are averaged over blocks of `block` consecutive windows (windows one horizon apart share no
    target row) and the blocks' means are the samples. Fewer than two blocks cannot be tested: p = 1.
    """
    from scipy import stats

    diff = np.asarray(errors, np.float64) - np.asarray(reference, np.float64)
    blocks = len(diff) // block
    result = {"blocks": blocks, "block_windows": block, "mean_difference": float(diff.mean()), "t": None, "p": 1.0}
    if blocks < 2:
        return result
    means = diff[len(diff) - blocks * block:].reshape(blocks, block).mean(axis=1)  # the latest windows, whole blocks
    sd = float(means.std(ddof=1))
    if sd == 0.0:  # every block equally better (or worse): no spread to test against
        result["p"] = 0.0 if means.mean() < 0 else 1.0
        return result
    t = float(means.mean() / (sd / np.sqrt(blocks)))
    result.update(t=t, p=float(stats.t.cdf(t, df=blocks - 1)))
    return result


def select_model(model, series: Series, splits: Splits, cfg: Config, run_path: Path | None = None):
    """`model.kind=auto`: keeps the fitted network or the baseline with the lower validation MSE (with
    `model.auto_blend`, the best network + DLinear average instead when `paired_gain_test` finds its gain over
    that choice significant at `model.auto_blend_p`).

    Returns `(model, selection)`; `selection` is None unless kind is auto. When a baseline wins,
    the returned model is that baseline as a Keras model (same inputs as the network; quantile
    models get validation-residual quantiles as their band) and, with `run_path`, it replaces
    `run_path/model.keras`; `selection.json` is written there either way. Test scores of the
    network are recorded for information only: the choice uses the validation split alone.
    """
    if cfg.model.kind != "auto":
        return model, None
    data, quantiles = cfg.data, cfg.model.quantiles
    network = network_kind(cfg.model)
    linear = DLinear().fit(splits.train.x, splits.train.y)
    val = splits.val
    candidates = {network: point_forecast(predict(model, val.inputs), quantiles),
                  **baseline_forecasts(val.x, data.horizon, series.seasonal_period, linear)}
    blends = {f"{network}+dlinear:{w}": w for w in BLEND_WEIGHTS} if cfg.model.auto_blend else {}
    for name, w in blends.items():  # forecast combination: the network's errors and DLinear's partly cancel
        candidates[name] = w * candidates[network] + (1 - w) * candidates["dlinear"]
    errors = {name: window_mse(val.y, p) for name, p in candidates.items()}
    val_mse = {name: float(np.mean(e)) for name, e in errors.items()}  # every window has as many values
    plain = {name: v for name, v in val_mse.items() if name not in blends}
    chosen = min(plain, key=plain.get)  # the network comes first, so it wins ties
    blend_test = None
    if blends:  # three more candidates fitted to the same validation windows: a blend must win by more than noise
        best_blend = min(blends, key=val_mse.get)
        blend_test = {"blend": best_blend, "against": chosen, "level": cfg.model.auto_blend_p,
                      **paired_gain_test(errors[best_blend], errors[chosen], data.horizon)}
        blend_test["kept"] = val_mse[best_blend] < val_mse[chosen] and blend_test["p"] <= cfg.model.auto_blend_p
        if blend_test["kept"]:
            chosen = best_blend
    test_point = point_forecast(predict(model, splits.test.inputs), quantiles).astype(np.float64)
    selection = {
        "criterion": "validation MSE (scaled), every validation window",
        "validation_mse": val_mse, "chosen": chosen, "network": network,
        "baseline_won": chosen not in (network, *blends),
        **({"blend_test": blend_test} if blend_test else {}),
        "network_test": {"mse": float(np.mean((test_point - splits.test.y) ** 2)),
                         "mae": float(np.mean(np.abs(test_point - splits.test.y)))},
    }
    if chosen in blends:
        selection["blend_weight"] = blends[chosen]
    if chosen != network:  # a baseline, or a blend over DLinear: built as Keras models, saved as model.keras
        kind = "dlinear" if chosen in blends else chosen
        offsets = residual_quantiles(val.y, candidates[chosen], quantiles) if quantiles else None  # none for blends
        baseline = build_baseline_model(
            kind, data.input_length, data.horizon, len(series.columns), period=series.seasonal_period,
            dlinear_weights=linear.weights if kind == "dlinear" else None, kernel=linear.kernel,
            quantiles=quantiles, quantile_offsets=offsets, **series.covariate_sizes)
        model = build_blend_model(model, baseline, blends[chosen]) if chosen in blends else baseline
        if run_path is not None:
            model.save(str(Path(run_path) / "model.keras"))
    if run_path is not None:
        write_json(Path(run_path) / "selection.json", selection)
    why = (" (a baseline beat the network)" if selection["baseline_won"] else
           f" (network x {blends[chosen]} + DLinear x {1 - blends[chosen]})" if chosen in blends else "")
    if blend_test and not blend_test["kept"] and val_mse[blend_test["blend"]] < val_mse[chosen]:
        why += (f"; {blend_test['blend']} was lower by {val_mse[chosen] - val_mse[blend_test['blend']]:.4f} but not "
                f"significantly (p {blend_test['p']:.2f} > {blend_test['level']} over {blend_test['blocks']} blocks)")
    print(f"model.kind=auto: validation MSE " + ", ".join(f"{k} {v:.4f}" for k, v in val_mse.items())
          + f" -> keeping {chosen}{why}")
    return model, selection


def evaluate_run(model, series: Series, splits: Splits, cfg: Config, plot_path: Path | None = None,
                 selection: dict | None = None, baselines_from: tuple[Series, Splits] | None = None) -> dict:
    """Every metric for the model and the baselines; optionally writes the forecast plot.

    `selection`: what `select_model` returned (kind=auto), recorded as `metrics["selection"]`.
    `baselines_from`: the run's own (series, splits), whose training rows fit DLinear and the MASE scale
    when `series` is another file (`evaluate --data`); by default `series` and `splits` themselves.
    """
    data = cfg.data
    quantiles = cfg.model.quantiles
    fit_series, fit_splits = baselines_from or (series, splits)
    linear = DLinear().fit(fit_splits.train.x, fit_splits.train.y)
    train_start, train_end = fit_splits.borders["train"]
    scale = mase_scale(fit_series.values[train_start:train_end], fit_series.seasonal_period)

    test = splits.test
    output = predict(model, test.inputs)
    forecasts = {"model": point_forecast(output, quantiles), **baseline_forecasts(test.x, data.horizon, series.seasonal_period, linear)}
    test_metrics = {name: score(test.y, p, splits, series, scale) for name, p in forecasts.items()}
    model_name = selection["chosen"] if selection else network_kind(cfg.model)
    metrics: dict = {
        "dataset": series.name, "model": model_name, "features": data.features, "channels": series.columns,
        "target": series.target, "input_length": data.input_length, "horizon": data.horizon,
        "past_covariates": series.past_covariate_names, "future_covariates": series.future_covariate_names,
        "frequency": series.frequency, "seasonal_period": series.seasonal_period,
        "test_windows": len(test), "train_windows": len(splits.train), "val_windows": len(splits.val),
        "borders": splits.borders, "missing": series.missing_report,
        "test": test_metrics,
    }
    if selection:
        metrics["selection"] = selection
    if quantiles:
        metrics["quantile_coverage"] = coverage(test.y, output, quantiles)

    origins = backtest_origins(len(series.values), cfg)
    if origins:
        back = splits.windows_at(origins)
        bx, by = back.x, back.y
        b_output = predict(model, back.inputs)
        b_forecasts = {"model": point_forecast(b_output, quantiles), **baseline_forecasts(bx, data.horizon, series.seasonal_period, linear)}
        metrics["backtest"] = {
            "origins": [str(series.timestamps[o]) for o in origins],
            "step": cfg.eval.backtest_step or data.horizon,
            **{name: {
                "mae_orig_per_window": [score(by[i:i + 1], p[i:i + 1], splits, series, scale)["mae_orig"] for i in range(len(origins))],
                **score(by, p, splits, series, scale)} for name, p in b_forecasts.items()},
        }
        if plot_path is not None:
            plot_forecast(series, splits, cfg, origins[0], bx[0], by[0], b_output[0],
                          {k: v[0] for k, v in b_forecasts.items()}, plot_path, label=model_name)
    best = min(BASELINES, key=lambda name: test_metrics[name]["mse"])
    metrics["summary"] = {
        "test_mse": test_metrics["model"]["mse"], "test_mae": test_metrics["model"]["mae"],
        "test_mase": test_metrics["model"]["mase"],
        **{f"{name}_mse": test_metrics[name]["mse"] for name in BASELINES},
        "best_baseline": best, "beats_best_baseline": test_metrics["model"]["mse"] < test_metrics[best]["mse"],
    }
    if selection:
        metrics["summary"].update(chosen=selection["chosen"], baseline_won=selection["baseline_won"])
    return metrics


def _weighted(scores: list[dict], weights) -> dict:
    """The mean of each metric over `scores`, weighted by `weights` (window counts) or not (all ones)."""
    weights = np.asarray(weights, dtype=np.float64)
    return {key: float(np.dot([s[key] for s in scores], weights) / weights.sum()) for key in scores[0]}


def _score_panel(panel, splits, series_of: np.ndarray, y: np.ndarray, forecasts: dict, scales: list) -> tuple:
    """Per-series scores of each forecast, their window-weighted mean (= pooled mse/mae) and plain mean."""
    per_series, counts = {}, []
    for i, series_id in enumerate(panel.ids):
        rows = series_of == i
        counts.append(int(rows.sum()))
        if rows.any():
            per_series[series_id] = {"windows": counts[-1], **{
                name: score(y[rows], p[rows], splits.parts[i], panel.series[i], scales[i]) for name, p in forecasts.items()}}
    scored = [i for i, n in enumerate(counts) if n]
    pooled, mean = {}, {}
    for name in forecasts:
        scores = [per_series[panel.ids[i]][name] for i in scored]
        pooled[name] = _weighted(scores, [counts[i] for i in scored])
        mean[name] = _weighted(scores, np.ones(len(scores)))
    return per_series, pooled, mean


def evaluate_panel(model, panel, splits, cfg: Config, plot_path: Path | None = None, selection: dict | None = None) -> dict:
    """Every metric of a long-format run: per series, over all windows and over series, beside the baselines.

    `splits` is an `apps.timeseries.panel.PanelSplits`; each series is scored with its own scaler
    (mse/mae on its scaled values, mase against its own training rows). `test` holds the means over
    every window of every series (the pooled benchmark numbers), `test_mean_over_series` the plain
    means of the per-series scores (small series count as much as long ones), `per_series` each one.
    """
    data, quantiles = cfg.data, cfg.model.quantiles
    period = panel.seasonal_period
    linear = DLinear().fit(splits.train.x, splits.train.y)
    scales = [mase_scale(s.values[p.borders["train"][0]:p.borders["train"][1]], period)
              for s, p in zip(panel.series, splits.parts)]
    test = splits.test
    output = predict(model, test.inputs)
    forecasts = {"model": point_forecast(output, quantiles), **baseline_forecasts(test.x, data.horizon, period, linear)}
    per_series, pooled, mean = _score_panel(panel, splits, splits.test_series, test.y, forecasts, scales)
    model_name = selection["chosen"] if selection else network_kind(cfg.model)
    metrics: dict = {
        "layout": "long", "dataset": panel.name, "model": model_name, "id_column": panel.id_column,
        "series_ids": panel.ids, "num_series": len(panel.ids), "channels": panel.columns, "target": panel.target,
        "input_length": data.input_length, "horizon": data.horizon,
        "past_covariates": panel.past_covariate_names, "future_covariates": panel.future_covariate_names,
        "frequency": panel.frequency, "seasonal_period": period,
        "test_windows": len(test), "train_windows": len(splits.train), "val_windows": len(splits.val),
        "borders": {i: p.borders for i, p in zip(panel.ids, splits.parts)}, "missing": panel.missing_report,
        "test": pooled, "test_mean_over_series": mean, "per_series": per_series,
    }
    if selection:
        metrics["selection"] = selection
    if quantiles:
        metrics["quantile_coverage"] = coverage(test.y, output, quantiles)

    origins = {i: backtest_origins(len(s.values), cfg) for i, s in zip(panel.ids, panel.series)}
    chosen = [k for k, i in enumerate(panel.ids) if origins[i]]
    if chosen:
        back, series_of = pool([splits.parts[k].windows_at(origins[panel.ids[k]]) for k in chosen])
        series_of = np.asarray(chosen)[series_of]
        b_output = predict(model, back.inputs)
        b_forecasts = {"model": point_forecast(b_output, quantiles), **baseline_forecasts(back.x, data.horizon, period, linear)}
        _, b_pooled, _ = _score_panel(panel, splits, series_of, back.y, b_forecasts, scales)
        metrics["backtest"] = {"origins": {i: [str(s.timestamps[o]) for o in origins[i]] for i, s in
                                           zip(panel.ids, panel.series)},
                               "step": cfg.eval.backtest_step or data.horizon, **b_pooled}
        if plot_path is not None:
            first = np.flatnonzero(np.r_[True, series_of[1:] != series_of[:-1]])[:4]  # latest origin of up to 4 series
            plot_panel(panel, splits, cfg, series_of[first], back.y[first], b_output[first],
                       b_forecasts["naive"][first], [origins[panel.ids[k]][0] for k in series_of[first]], plot_path,
                       label=model_name)
    best = min(BASELINES, key=lambda name: pooled[name]["mse"])
    metrics["summary"] = {
        "series": len(panel.ids), "test_mse": pooled["model"]["mse"], "test_mae": pooled["model"]["mae"],
        "test_mase": pooled["model"]["mase"], "test_mse_mean_over_series": mean["model"]["mse"],
        **{f"{name}_mse": pooled[name]["mse"] for name in BASELINES},
        "best_baseline": best, "beats_best_baseline": pooled["model"]["mse"] < pooled[best]["mse"],
    }
    if selection:
        metrics["summary"].update(chosen=selection["chosen"], baseline_won=selection["baseline_won"])
    return metrics


def _quantile_band(ax, t, output, quantiles, inverse, channel: int) -> None:
    """The model's lowest-to-highest quantile band of `channel` (nothing for a point model)."""
    if quantiles:
        low, high = int(np.argmin(quantiles)), int(np.argmax(quantiles))
        ax.fill_between(t, inverse(output[..., low])[:, channel], inverse(output[..., high])[:, channel],
                        color="tab:blue", alpha=0.2, label=f"model {min(quantiles):g}-{max(quantiles):g} quantiles")


def _save_figure(fig, path: Path) -> Path:
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_panel(panel, splits, cfg: Config, series_index, y, output, naive_forecast, origins, path: Path,
               label: str = "") -> Path:
    """Up to four series at their latest backtest origin, on their own scale: history, truth, model, naive."""
    quantiles = cfg.model.quantiles
    fig, axes = plt.subplots(len(series_index), 1, figsize=(10, 2.5 * len(series_index)), squeeze=False)
    for ax, k, yk, ok, nk, origin in zip(axes[:, 0], series_index, y, output, naive_forecast, origins):
        series, inverse = panel.series[k], splits.parts[k].scaler.inverse
        history = cfg.eval.plot_history or cfg.data.input_length
        start = max(0, origin - history)
        future_t = series.timestamps[origin:origin + cfg.data.horizon]
        ax.plot(series.timestamps[start:origin], series.values[start:origin, 0], color="black", label="history")
        ax.plot(future_t, inverse(yk)[:, 0], color="black", linestyle="--", label="actual")
        point = point_forecast(ok[None], quantiles)[0]
        _quantile_band(ax, future_t, ok, quantiles, inverse, 0)
        ax.plot(future_t, inverse(point)[:, 0], color="tab:blue", label=label or cfg.model.kind)
        ax.plot(future_t, inverse(nk)[:, 0], color="tab:gray", linestyle=":", label="naive")
        ax.set_title(f"{panel.name}: series {panel.ids[k]}", fontsize=9)
        ax.legend(loc="best", fontsize=7)
    return _save_figure(fig, path)


def plot_forecast(series: Series, splits: Splits, cfg: Config, origin: int, x, y, output, forecasts: dict, path: Path,
                  label: str = "") -> Path:
    """The target channel around the latest backtest origin: history, truth, model (+ band) and baselines."""
    c = series.target_index
    inverse = splits.scaler.inverse
    history = cfg.eval.plot_history or cfg.data.input_length
    past = series.values[max(0, origin - history):origin, c]
    past_t = series.timestamps[max(0, origin - history):origin]
    future_t = series.timestamps[origin:origin + cfg.data.horizon]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(past_t, past, color="black", label="history")
    ax.plot(future_t, inverse(y)[:, c], color="black", linestyle="--", label="actual")
    _quantile_band(ax, future_t, output, cfg.model.quantiles, inverse, c)
    styles = {"model": ("tab:blue", "-"), "naive": ("tab:gray", ":"), "seasonal_naive": ("tab:green", ":"), "dlinear": ("tab:orange", "-.")}
    for name, forecast in forecasts.items():
        color, line = styles[name]
        ax.plot(future_t, inverse(forecast)[:, c], color=color, linestyle=line, label=name if name != "model" else (label or cfg.model.kind))
    ax.set_title(f"{series.name}: {series.target}, {cfg.data.horizon}-step forecast from {series.timestamps[origin].date()}")
    ax.legend(loc="best", fontsize=8)
    return _save_figure(fig, path)


def format_table(metrics: dict) -> str:
    """Model vs baselines on the scored windows (the test split unless evaluate named another split or a
    file; the metric keys keep the `test` names either way), one line each."""
    from common.pipeline import scored_on

    lines = [f"{'':20s} {'MSE':>8s} {'MAE':>8s} {'MASE':>8s} {'sMAPE':>8s}   ({scored_on(metrics)}, "
             f"{metrics['test_windows']} windows)"]

    def rows(scores: dict) -> list[str]:
        return [f"{metrics['model'] if name == 'model' else name:20s} {m['mse']:8.4f} {m['mae']:8.4f} "
                f"{m['mase']:8.4f} {m['smape']:8.2f}" for name, m in scores.items()]

    lines += rows(metrics["test"])
    if "test_mean_over_series" in metrics:  # long format: the pooled numbers above, then the plain mean over series
        lines += [f"mean over {metrics['num_series']} series:", *rows(metrics["test_mean_over_series"])]
    return "\n".join(lines)


def main(argv=None) -> int:
    return evaluate_main("forecasting", argv)


if __name__ == "__main__":
    raise SystemExit(main())
