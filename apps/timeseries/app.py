"""The forecasting app's declarations for the shared pipeline (common/pipeline.py).

Training reads a series (bundled statsmodels data, a CSV, or a benchmark file) or many series
(a long-format CSV: `data.id_column`, one global model; apps.timeseries.panel), splits it in time,
fits the scaler on the training rows, trains a SegRNN / LSTM / GRU forecaster on windows and
scores it beside naive, seasonal-naive and DLinear baselines (benchmark MSE/MAE on the scaled
data, MASE/sMAPE on the original scale, a rolling-origin backtest).

    python -m apps.timeseries.train --config ett --run-dir runs/etth1 --set data.path=timeseries/ETTh1.csv
    from common.pipeline import load_run; load_run("runs/etth1").predict()        # a DataFrame forecast

`--set model.ensemble_size=N` trains N networks from consecutive seeds and averages their forecasts
in one model (N x the time; on ETT it bought 0.001-0.002 of test MSE over the members' mean,
docs/results.md "Weight averaging and seed ensembles").
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np

from apps.timeseries.config import PRESETS, Config
from common.errors import DataError, RunDirError, UsageError
from common.pipeline import App, Built, Job, Prepared, fit_ensemble
from common.rundir import read_json

# evaluate --data: a value this many training standard deviations out is named in a warning (a unit or typing slip)
FAR_OUT = 100


def preprocessing_state(series, splits) -> dict:
    return {
        "dataset": series.name, "columns": series.columns, "target": series.target, "frequency": series.frequency,
        "seasonal_period": series.seasonal_period, "scaler": splits.scaler.to_dict(), "borders": splits.borders,
        "missing": series.missing_report, "last_timestamp": str(series.timestamps[-1]), "num_rows": len(series.values),
        "past_covariates": series.past_covariate_names, "future_covariates": series.future_covariate_names,
        "covariate_scaler": splits.covariate_scaler.to_dict() if splits.covariate_scaler is not None else None,
    }


def panel_state(panel, splits) -> dict:
    """preprocessing.json of a long-format run: the shared settings, then each series' scaler and borders."""
    return {
        "layout": "long", "dataset": panel.name, "id_column": panel.id_column, "date_column": panel.date_column,
        "columns": panel.columns, "target": panel.target, "frequency": panel.frequency,
        "seasonal_period": panel.seasonal_period, "ids": panel.ids, "missing": panel.missing_report,
        "past_covariates": panel.past_covariate_names, "future_covariates": panel.future_covariate_names,
        "series": {series_id: {
            "scaler": part.scaler.to_dict(), "borders": part.borders, "num_rows": len(series.values),
            "last_timestamp": str(series.timestamps[-1]),
            "covariate_scaler": part.covariate_scaler.to_dict() if part.covariate_scaler is not None else None,
        } for series_id, series, part in zip(panel.ids, panel.series, splits.parts)},
    }


def _window_input(model):
    """The model's `window` input (a covariate model has named dict inputs)."""
    for tensor in model.inputs:
        if getattr(tensor, "name", "").split(":")[0] == "window":
            return tensor
    return model.inputs[0]


class ForecastingApp(App):
    name = "forecasting"
    package = "apps.timeseries"
    title = "multi-horizon forecasting (SegRNN / LSTM / GRU) against naive, seasonal-naive and DLinear"
    config_class = Config
    presets = PRESETS
    preset_help = {
        "tiny": "seconds: the bundled CO2 series, input 24, horizon 8, 1 epoch (tests)",
        "default": "make train-forecast: the bundled monthly CO2 series (statsmodels), a few minutes on 2 CPU cores",
        "ett": "ETTh1 (data.path for ETTh2), input 96, horizon 96 (data.horizon=192/336/720): SegRNN d_model 256, 6 epochs, ~5 min",
        "etth1": "ETTh1 with SegRNN's own recipe (d_model 512, MSE, lr 1e-3 step decay, PyTorch init), up to 20 epochs, ~8-13 min a horizon at H=96-336 and ~30 at H=720 on 2 CPU cores",
        "etth2": "ETTh2: the ett settings (d_model 256, MAE) with PyTorch init and up to 10 epochs, ~1.5-4 min a horizon on 2 CPU cores",
        "etth1-720": "ETTh1 at input 720 (SegRNN's Table 2): the ett settings, segments of 48, PyTorch init, 6 epochs, ~3-5 min a horizon on 2 CPU cores",
        "etth2-720": "ETTh2 at input 720 (SegRNN's Table 2): the etth2 settings, segments of 48, lr 2e-4, ~3-5 min a horizon on 2 CPU cores",
        "exchange": "exchange_rate, input 96, horizon 96-720: SegRNN or a baseline, whichever wins on validation (~1 min)",
        "illness": "national_illness, input 60, horizon 24-60: SegRNN or a baseline, whichever wins on validation (~1 min)",
        "gpu": "ETTh1 at the paper's width (d_model 512, 30 epochs) for an accelerator",
    }
    splits = ("test", "validation")
    data_is_one_split = True  # evaluate --data scores every window of the file
    predict_command = "forecast"
    export_formats = ("keras", "saved_model", "onnx", "tflite")
    default_export_formats = ("keras", "saved_model", "onnx", "tflite")
    # What the trained network was built for: a finished run cannot read other values of these.
    fixed_settings = ("data.input_length", "data.horizon", "data.features", "data.columns", "data.target",
                      "data.id_column")

    def validate(self, cfg: Config) -> None:
        from apps.timeseries.data import check_source_path
        from common.errors import ConfigError

        super().validate(cfg)
        data, model = cfg.data, cfg.model
        check_source_path(data)
        covariates = data.calendar or data.past_covariates or data.future_covariates
        if covariates and model.decoder == "rmf" and model.kind in ("segrnn", "auto"):
            raise ConfigError("model.decoder=rmf takes no covariates; use --set model.decoder=pmf, or drop "
                              "data.calendar / data.past_covariates / data.future_covariates")
        if model.auto_blend and (model.kind != "auto" or model.quantiles or model.ensemble_size != 1):
            raise ConfigError("model.auto_blend=true weighs one network's point forecast against DLinear under "
                              "model.kind=auto; use it with model.kind=auto, model.quantiles=() and "
                              "model.ensemble_size=1, or set model.auto_blend=false")
        both = set(data.past_covariates) & set(data.future_covariates)
        if both:
            raise ConfigError(f"column(s) {sorted(both)} are in both data.past_covariates and data.future_covariates; "
                              f"a column is one or the other")
        self._validate_long_format(data)

    @staticmethod
    def _validate_long_format(data) -> None:
        """Rules of long-format data (`data.id_column`, or the generated panel)."""
        from apps.timeseries.panel import id_column_name, is_long
        from common.errors import ConfigError

        if data.id_column and data.source not in ("csv", "synthetic_panel"):
            raise ConfigError(f"data.id_column={data.id_column!r} reads a long-format CSV (id, date, value rows), but "
                              f"data.source={data.source!r} is wide; use --set data.source=csv, or drop data.id_column")
        if not is_long(data):
            return
        id_column = id_column_name(data)
        if data.columns:
            raise ConfigError(f"data.columns={data.columns!r} picks wide-format channels; in long format each series "
                              f"has one value column: name it with data.target and leave data.columns=()")
        named = {"data.date_column": data.date_column, "data.target": data.target}
        clash = [key for key, value in named.items() if value == id_column]
        if clash or id_column in data.past_covariates + data.future_covariates:
            where = clash or ["data.past_covariates/future_covariates"]
            raise ConfigError(f"data.id_column={id_column!r} is also {where[0]}; the id column only names the series")

    # ------------------------------------------------------------------ training
    def prepare(self, job: Job) -> Prepared:
        from apps.timeseries.data import load_series, make_splits
        from apps.timeseries.panel import is_long
        from common.training import steps_for

        cfg, dist = job.cfg, job.dist
        if is_long(cfg.data):
            return self._prepare_panel(job)
        series = load_series(cfg.data)
        splits = make_splits(series, cfg.data)
        print(f"{series.name}: {len(series.values)} rows x {len(series.columns)} channels {series.columns}, "
              f"frequency {series.frequency}, seasonal period {series.seasonal_period}, missing {series.missing_report}")
        summary = {"dataset": series.name, "rows": len(series.values), "channels": len(series.columns),
                   "train_windows": len(splits.train), "validation_windows": len(splits.val),
                   "test_windows": len(splits.test), "borders": splits.borders}
        if series.past_covariate_names or series.future_covariate_names:
            print(f"covariates: past {series.past_covariate_names}, known-future {series.future_covariate_names}")
        summary.update(past_covariates=series.past_covariate_names, future_covariates=series.future_covariate_names)
        return Prepared((splits.train.inputs, splits.train.y), (splits.val.inputs, splits.val.y),
                        steps_for(len(splits.train), dist.global_batch_size), summary,
                        types.SimpleNamespace(series=series, splits=splits))

    def _prepare_panel(self, job: Job) -> Prepared:
        """Long format: every series split and scaled on its own, their windows pooled for one global model."""
        from apps.timeseries.panel import load_panel, make_panel_splits
        from common.training import steps_for

        cfg = job.cfg
        panel = load_panel(cfg.data)
        splits = make_panel_splits(panel, cfg.data)
        rows = [len(s.values) for s in panel.series]
        print(f"{panel.name}: {len(panel.ids)} series (id column {panel.id_column!r}, value {panel.target!r}), "
              f"{min(rows)}-{max(rows)} rows each, frequency {panel.frequency}, seasonal period "
              f"{panel.seasonal_period}, missing {panel.missing_report}")
        summary = {"dataset": panel.name, "layout": "long", "series": len(panel.ids), "rows": int(sum(rows)),
                   "channels": 1, "train_windows": len(splits.train), "validation_windows": len(splits.val),
                   "test_windows": len(splits.test), "ids": panel.ids,
                   "past_covariates": panel.past_covariate_names, "future_covariates": panel.future_covariate_names}
        return Prepared((splits.train.inputs, splits.train.y), (splits.val.inputs, splits.val.y),
                        steps_for(len(splits.train), job.dist.global_batch_size), summary,
                        types.SimpleNamespace(series=panel, splits=splits))

    def build(self, job: Job) -> Built:
        from apps.timeseries.model import build_model, make_loss

        from common.rundir import SubRun

        cfg, data = job.cfg, job.prepared.data
        member = f"member_{job.run.path.name}" if isinstance(job.run, SubRun) else None  # members/<k>: member_<k>
        model = build_model(cfg.model, cfg.data.input_length, cfg.data.horizon, len(data.series.columns),
                            **data.series.covariate_sizes, name=member)
        return Built(model, {"loss": make_loss(cfg.model)})

    def fit(self, job: Job):
        """One network, or `model.ensemble_size` of them (seeds seed, seed+1, ...; each with its own
        checkpoint and early stopping under `members/<k>/`) averaged into one model."""
        from apps.timeseries.model import build_ensemble

        if job.cfg.model.ensemble_size == 1:
            return super().fit(job)
        fit_one = super().fit
        ensemble = fit_ensemble(job, job.cfg.model.ensemble_size, lambda member_job, k: fit_one(member_job),
                                build_ensemble)
        return ensemble.model, {"members": ensemble.histories}

    def save_state(self, job: Job) -> None:
        from apps.timeseries.panel import is_long

        data = job.prepared.data
        state = (panel_state if is_long(job.cfg.data) else preprocessing_state)(data.series, data.splits)
        job.run.write_json("preprocessing.json", state)

    def after_training(self, job: Job, model) -> dict:
        from apps.timeseries.evaluate import evaluate_panel, evaluate_run, format_table, select_model
        from apps.timeseries.panel import is_long

        data = job.prepared.data
        # kind=auto: the network or the best baseline, by validation MSE (the winner replaces model.keras).
        # A Panel and PanelSplits pass for a 1-channel series here: their windows are pooled over the series.
        model, selection = select_model(model, data.series, data.splits, job.cfg, job.path)
        score = evaluate_panel if is_long(job.cfg.data) else evaluate_run
        metrics = score(model, data.series, data.splits, job.cfg, plot_path=job.path / "forecast.png",
                        selection=selection)
        history = read_json(job.path / "history.json")
        if history.get("val_loss"):
            metrics["best_val_loss"] = min(history["val_loss"])
        if "members" in history:
            metrics["members"] = scores = self._member_scores(model, history, data.splits, job.cfg)
            for split in ("val", "test"):
                if f"{split}_mse" in scores:
                    each = [v for k, v in scores[f"{split}_mse"].items() if k != "ensemble"]
                    print(f"ensemble of {scores['size']}: {split} MSE {scores[f'{split}_mse']['ensemble']:.4f} "
                          f"(members {' / '.join(f'{v:.4f}' for v in each)}, their mean {sum(each) / len(each):.4f})")
        print()
        print(format_table(metrics))
        return metrics

    @staticmethod
    def _member_scores(model, history: dict, splits, cfg) -> dict:
        """Each member's and the ensemble's validation and test MSE/MAE (scaled), and each member's best
        validation loss: how much averaging bought, measured on validation before test."""
        import keras
        import numpy as np

        from apps.timeseries.evaluate import point_forecast, predict

        scores = {"size": len(history["members"]),
                  "best_val_loss": [min(h["val_loss"]) for h in history["members"] if h.get("val_loss")]}
        members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if not members:  # kind=auto kept a baseline in the ensemble's place
            return scores
        for split in ("val", "test"):
            windows = getattr(splits, split)
            if not len(windows):
                continue
            outputs = [predict(m, windows.inputs) for m in members]  # the ensemble's is their mean (its Average layer)
            named = [*((f"member_{k + 1}", out) for k, out in enumerate(outputs)), ("ensemble", np.mean(outputs, axis=0))]
            for name, output in named:
                error = point_forecast(output, cfg.model.quantiles).astype(np.float64) - windows.y
                scores.setdefault(f"{split}_mse", {})[name] = float(np.mean(error ** 2))
                scores.setdefault(f"{split}_mae", {})[name] = float(np.mean(np.abs(error)))
        return scores

    def summary(self, metrics: dict) -> dict:
        return {**metrics["summary"], "train_seconds": metrics["train_seconds"]}

    def summary_files(self):
        return ("config.json", "model.keras", "metrics.json", "preprocessing.json", "training_curves.png",
                "forecast.png")

    # ------------------------------------------------------------------ a finished run
    def load_state(self, run) -> dict:
        import apps.timeseries.model  # noqa: F401  (registers SegRNN & co. before model.keras loads)
        from apps.timeseries.data import Scaler

        state = read_json(run.path / "preprocessing.json", "the scaler and columns, written by apps.timeseries.train")
        if state.get("layout") == "long":
            return self._load_panel_state(run, state)
        try:
            scaler = Scaler.from_dict(state["scaler"])
            columns = list(state["columns"])
        except (KeyError, TypeError, ValueError) as err:
            raise RunDirError(f"{run.path / 'preprocessing.json'} is incomplete ({err}); the run dir is damaged: "
                              f"retrain") from None
        channels = _window_input(run.model).shape[-1]
        if len(scaler.mean) != len(columns) or channels != len(columns):
            raise RunDirError(f"{run.path}: preprocessing.json names {len(columns)} columns but the model takes "
                              f"{channels} channels; the run dir is damaged or mixed: retrain")
        return {**state, "scaler_object": scaler, "model_horizon": int(run.model.outputs[0].shape[1])}

    def _load_panel_state(self, run, state: dict) -> dict:
        from apps.timeseries.data import Scaler

        try:
            scalers = {series_id: Scaler.from_dict(info["scaler"]) for series_id, info in state["series"].items()}
            columns = list(state["columns"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise RunDirError(f"{run.path / 'preprocessing.json'} is incomplete ({err}); the run dir is damaged: "
                              f"retrain") from None
        channels = _window_input(run.model).shape[-1]
        if channels != 1 or len(columns) != 1 or any(len(s.mean) != 1 for s in scalers.values()):
            raise RunDirError(f"{run.path}: preprocessing.json describes a long-format run (one value per series) but "
                              f"the model takes {channels} channels; the run dir is damaged or mixed: retrain")
        return {**state, "scaler_objects": scalers, "model_horizon": int(run.model.outputs[0].shape[1])}

    def evaluate(self, run, split, data, out: Path, options: dict) -> dict:
        from apps.timeseries.data import Scaler, load_series, make_splits
        from apps.timeseries.evaluate import evaluate_panel, evaluate_run
        from apps.timeseries.panel import is_long, load_panel, make_panel_splits

        cfg = run.cfg
        selection = read_json(run.path / "selection.json") if (run.path / "selection.json").is_file() else None
        if is_long(cfg.data):
            if data:
                raise UsageError("a long-format (many series) run scores another file through --set data.path=FILE "
                                 "(not --data)")
            panel = load_panel(cfg.data)
            splits = make_panel_splits(panel, cfg.data).scoring(split)
            return evaluate_panel(run.model, panel, splits, cfg, plot_path=out / "forecast.png", selection=selection)
        # The run's columns by name, in its order, and its scalers: a file whose columns are ordered otherwise, or
        # hold more, is read as the model was trained; one missing a column is a DataError naming it.
        state = run.state
        data_cfg = dataclasses.replace(cfg.data, columns=tuple(state["columns"]))
        covariates = state.get("covariate_scaler")
        fitted = (state["scaler_object"], Scaler.from_dict(covariates) if covariates else None)
        own = load_series(data_cfg)
        own_splits = make_splits(own, data_cfg, fitted)
        if data:
            return self._evaluate_file(run, Path(data), data_cfg, fitted, own, own_splits, out, selection)
        if split == "validation":
            own_splits = dataclasses.replace(own_splits, test=own_splits.val)  # evaluate_run scores `test`
        return evaluate_run(run.model, own, own_splits, cfg, plot_path=out / "forecast.png", selection=selection)

    def _evaluate_file(self, run, path: Path, data_cfg, fitted, own, own_splits, out: Path, selection):
        """`evaluate --data FILE`: every window of FILE (a CSV with the run's date and value columns, e.g. other
        years of the same sensors), scaled as the model was trained; DLinear and the MASE scale are fitted on the
        run's own training rows, as for its test split."""
        from apps.timeseries.data import load_series, whole_series_splits
        from apps.timeseries.evaluate import evaluate_run

        if not path.is_file():
            raise UsageError(f"--data {path}: no such file (a CSV with a date column and the run's columns "
                             f"{list(data_cfg.columns)})")
        other_cfg = dataclasses.replace(data_cfg, source="csv", path=str(path.resolve()), split="ratio")
        other = load_series(other_cfg)
        if other.frequency != own.frequency:
            raise DataError(f"{path.name}: one row every {other.frequency!r}, but the run was trained on rows every "
                            f"{own.frequency!r}; resample the file to the run's frequency")
        splits = whole_series_splits(other, other_cfg, fitted)
        far = np.abs(splits.scaled) > FAR_OUT
        if far.any():
            row, column = np.argwhere(far)[0]
            print(f"warning: {path.name}: {int(far.sum())} value(s) more than {FAR_OUT} training standard deviations "
                  f"from the training mean, first {other.values[row, column]:g} in column {other.columns[column]!r} at "
                  f"{other.timestamps[row]}; they weigh on every score below", file=sys.stderr)
        metrics = evaluate_run(run.model, other, splits, run.cfg, plot_path=out / "forecast.png", selection=selection,
                               baselines_from=(own, own_splits))
        return {**metrics, "data": str(path), "scored": "every window of the file, scaled with the run's scaler"}

    def print_evaluation(self, metrics: dict, out: Path) -> None:
        from apps.timeseries.evaluate import format_table

        print(format_table(metrics))
        missing = metrics.get("missing") or {}
        if missing.get("missing_values") or missing.get("missing_timestamps_added"):
            print(f"note: {missing.get('missing_values', 0)} missing value(s) in the data (with "
                  f"{missing.get('missing_timestamps_added', 0)} timestamp(s) absent from the file), handled by "
                  f"data.missing={missing.get('policy')} ({missing.get('masked_windows', 0)} window(s) masked)")
        if "quantile_coverage" in metrics:
            cov = metrics["quantile_coverage"]
            print(f"interval {cov['interval']} coverage {cov['interval_coverage']:.3f} "
                  f"(nominal {cov['interval_nominal']:.2f})")
        print(f"Plot: {out / 'forecast.png'}")

    def predict(self, run, inputs=None, horizon: int = 0, allow_filled: bool = False):
        from apps.timeseries.forecast import forecast

        return forecast(run, inputs, horizon=horizon, allow_filled=allow_filled)

    def add_predict_arguments(self, parser) -> None:
        from apps.timeseries.forecast import add_arguments

        add_arguments(parser)

    def run_predict_command(self, run, args) -> int:
        from apps.timeseries.forecast import run_command

        return run_command(run, args)

    def export(self, run, out: Path, formats, num_examples: int, options: dict) -> dict:
        from apps.timeseries.export import export_run

        return export_run(run, out, formats, num_examples)


APP = ForecastingApp()
