"""Configs for the forecasting app: data, model, evaluation and training, plus presets.

    python -m apps.timeseries.train --config default --run-dir runs/forecast \
        --set data.source=tslib --set data.path=../shared/data/timeseries/ETTh1.csv
    python -m apps.timeseries.train --config tiny --run-dir runs/panel \
        --set data.source=csv --set data.path=sales_long.csv --set data.id_column=id   # many series, one model
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from common.config import added_field, check_fields
from common.training import TrainConfig

# Calendar covariates derived from timestamps (apps.timeseries.data.calendar_features).
CALENDAR_FEATURES = ("minute", "hour", "day_of_week", "day_of_month", "day_of_year", "week_of_year", "month")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: Literal["co2", "sunspots", "csv", "tslib", "synthetic_panel"] = "co2"  # co2/sunspots ship with statsmodels (offline); csv/tslib read `path`; synthetic_panel generates many series (long format, offline)
    path: str = ""  # CSV file for source=csv|tslib; a path relative to the shared data dir also works (timeseries/ETTh1.csv)
    id_column: str = ""  # long format (rows id,date,value[,covariates], one global model over the series): the series-id column; "" = wide format (a column per channel)
    date_column: str = ""  # datetime column; "" picks `date` or the first column
    columns: tuple[str, ...] = ()  # value columns to use; () = every numeric column (csv) or all of `date,...,OT` (tslib)
    target: str = ""  # column plotted and scored on the original scale; "" = OT if present, else the last column (long format: the value column, "" = value if present, else the one column left)
    features: Literal["M", "S"] = "M"  # M: all columns in and out (benchmark multivariate); S: the target alone
    missing: Literal["interpolate", "mask", "error"] = "interpolate"  # interpolate fills gaps in time; mask drops windows touching a gap; error refuses
    frequency: str = ""  # pandas offset alias (H, D, W-SAT...); "" infers it from the timestamps
    seasonal_period: int = 0  # seasonal-naive lag and MASE period in steps; 0 derives it from the frequency
    input_length: int = 96  # look-back window; longer sees more seasonality but costs time and needs longer series
    horizon: int = 96  # steps forecast at once (direct multi-horizon)
    split: Literal["auto", "ett_hour", "ett_minute", "ratio"] = "auto"  # auto: ETT 12/4/4 months for ETTh*/ETTm* files, else ratio
    train_ratio: float = 0.7  # ratio split only: train share (benchmark convention 70/10/20)
    test_ratio: float = 0.2  # ratio split only: test share; validation gets the rest
    max_train_windows: int = 0  # subsample training windows (evenly) to bound epoch time; 0 keeps all
    calendar: tuple[str, ...] = ()  # known-future calendar covariates from the timestamp (sin/cos pairs): hour, day_of_week, day_of_month, day_of_year, week_of_year, month, minute, or auto (by frequency); () = none
    past_covariates: tuple[str, ...] = ()  # columns observed up to the forecast origin only (model inputs, never forecast)
    future_covariates: tuple[str, ...] = ()  # columns known over the horizon too (plans, schedules, weather forecasts); forecasting needs their future rows
    panel_series: int = 6  # source=synthetic_panel: number of generated series (each its own scale, season and phase)
    panel_length: int = 720  # source=synthetic_panel: hourly rows per series; longer gives more windows per series

    def __post_init__(self):
        unknown = [name for name in self.calendar if name not in CALENDAR_FEATURES + ("auto",)]
        check_fields(self, "data", [
            ("calendar", not unknown, f"a tuple of {', '.join(CALENDAR_FEATURES + ('auto',))} (unknown: {unknown})"),
            ("input_length", isinstance(self.input_length, int) and self.input_length >= 1, "an integer >= 1"),
            ("horizon", isinstance(self.horizon, int) and self.horizon >= 1, "an integer >= 1"),
            ("seasonal_period", isinstance(self.seasonal_period, int) and self.seasonal_period >= 0,
             "an integer >= 0 (0 derives it from the frequency)"),
            ("max_train_windows", isinstance(self.max_train_windows, int) and self.max_train_windows >= 0,
             "an integer >= 0 (0 keeps all)"),
            ("panel_series", isinstance(self.panel_series, int) and self.panel_series >= 1, "an integer >= 1"),
            ("panel_length", isinstance(self.panel_length, int) and self.panel_length >= 2, "an integer >= 2"),
            ("train_ratio", 0.0 < self.train_ratio < 1.0, "in (0, 1)"),
            ("test_ratio", 0.0 < self.test_ratio < 1.0, "in (0, 1)"),
        ])


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    kind: Literal["segrnn", "lstm", "gru", "auto"] = "segrnn"  # segrnn: segment-recurrent (Lin et al. 2023); lstm/gru: direct multi-horizon RecurrentStack; auto: fit auto_network, keep it or the best baseline by validation MSE
    auto_network: Literal["segrnn", "lstm", "gru"] = "segrnn"  # kind=auto only: the network fitted before the validation comparison
    auto_blend: bool = added_field(False, since="2026-12-08")  # kind=auto only: also weigh the averages network x w + DLinear x (1 - w), w = 0.25/0.5/0.75, on validation (point forecasts, one network)
    auto_blend_p: float = added_field(0.05, since="2026-12-08")  # auto_blend: a blend replaces the model chosen without blends only when its lower validation MSE is significant at this one-sided level (paired t-test over blocks of `horizon` consecutive windows); 1.0 keeps any lower MSE (the first auto_blend runs, 2026-12-08 morning)
    normalization: Literal["last", "revin", "none"] = "last"  # last: subtract the window's last value (SegRNN); revin: per-window mean/std with affine
    channel_mode: Literal["independent", "multivariate"] = "independent"  # independent shares weights over channels (robust); multivariate mixes them
    d_model: int = 512  # segrnn hidden width; the paper uses 512, smaller trains much faster on CPU
    seg_len: int = 48  # segrnn segment length; input/horizon are padded up to a multiple
    cell: Literal["gru", "lstm"] = "gru"  # segrnn recurrent cell; the paper's GRU is cheaper and as accurate
    decoder: Literal["pmf", "rmf"] = "pmf"  # segrnn decoding: pmf (parallel, paper) or rmf (recurrent, feeds each segment back; slower, no covariates)
    channel_embedding: bool = True  # segrnn pmf: per-channel half of the decoder queries (paper's channel_id); off shares one position embedding
    init: Literal["glorot", "fan_in"] = added_field("glorot", since="2026-12-07")  # segrnn weights: Keras's Glorot/orthogonal, or PyTorch's uniform +-1/sqrt(fan_in) (the paper's code; ETTh1-192 test MSE 0.4127 -> 0.4086, one seed)
    decoder_units: int = 32  # lstm/gru with known-future covariates: width of the per-step decoder that meets them
    units: tuple[int, ...] = (64,)  # lstm/gru layer widths
    dropout_rate: float = 0.5  # before the output head; SegRNN uses 0.5 against overfitting small benchmarks
    quantiles: tuple[float, ...] = ()  # e.g. (0.1, 0.5, 0.9) adds a quantile axis trained with pinball loss; () = point forecast
    loss: Literal["mse", "mae"] = "mse"  # point-forecast loss; mae is more robust to spikes, mse matches the MSE metric
    ensemble_size: int = added_field(1, since="2026-12-07")  # >1: train this many networks (seeds seed, seed+1, ...) and average their forecasts in one model; N x the training time

    def __post_init__(self):
        check_fields(self, "model", [
            ("d_model", isinstance(self.d_model, int) and self.d_model >= 1, "an integer >= 1"),
            ("seg_len", isinstance(self.seg_len, int) and self.seg_len >= 1, "an integer >= 1"),
            ("decoder_units", isinstance(self.decoder_units, int) and self.decoder_units >= 1, "an integer >= 1"),
            ("units", len(self.units) >= 1 and all(isinstance(u, int) and u >= 1 for u in self.units),
             "a non-empty tuple of integers >= 1, e.g. (64,)"),
            ("dropout_rate", 0.0 <= self.dropout_rate < 1.0, "in [0, 1)"),
            ("auto_blend_p", 0.0 < self.auto_blend_p <= 1.0, "in (0, 1], e.g. 0.05 (1.0 keeps any lower validation MSE)"),
            ("ensemble_size", isinstance(self.ensemble_size, int) and self.ensemble_size >= 1,
             "an integer >= 1 (1 trains a single network)"),
            ("quantiles", all(0.0 < q < 1.0 for q in self.quantiles)
             and all(a < b for a, b in zip(self.quantiles, self.quantiles[1:])),
             "ascending distinct values in (0, 1), e.g. (0.1, 0.5, 0.9)"),
        ])


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    backtest_windows: int = 5  # rolling-origin backtest: number of forecast origins at the end of the series
    backtest_step: int = 0  # steps between origins; 0 = one horizon apart (non-overlapping)
    plot_history: int = 0  # history steps shown before the forecast in the plot; 0 = the input window

    def __post_init__(self):
        check_fields(self, "eval", [
            ("backtest_windows", isinstance(self.backtest_windows, int) and self.backtest_windows >= 0, "an integer >= 0"),
            ("backtest_step", isinstance(self.backtest_step, int) and self.backtest_step >= 0, "an integer >= 0"),
            ("plot_history", isinstance(self.plot_history, int) and self.plot_history >= 0, "an integer >= 0"),
        ])


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    eval: EvalConfig = EvalConfig()
    train: TrainConfig = TrainConfig()


# CO2 (weekly, 1958-2001): two years in, one year out; a few minutes on 2 CPU cores.
DEFAULT = Config(
    data=DataConfig(source="co2", input_length=104, horizon=52),
    model=ModelConfig(kind="segrnn", d_model=128, seg_len=26, dropout_rate=0.1, quantiles=(0.1, 0.5, 0.9)),
    eval=EvalConfig(backtest_windows=5),
    train=TrainConfig(epochs=40, batch_size=32, learning_rate=3e-3, optimizer="adam", weight_decay=0.0,
                      schedule="cosine", early_stopping_patience=8),
)

# ETTh1/ETTh2 benchmark protocol (input 96, multivariate), sized for a shared CPU: SegRNN with
# d_model 256 (paper: 512) and 6 epochs; ETTh1-96 trains in about 5 minutes on 2 busy cores.
_ETT = Config(
    data=DataConfig(source="tslib", path="timeseries/ETTh1.csv", input_length=96, horizon=96, features="M"),
    model=ModelConfig(kind="segrnn", d_model=256, seg_len=24, dropout_rate=0.5, normalization="last", loss="mae"),
    eval=EvalConfig(backtest_windows=5),
    train=TrainConfig(epochs=6, batch_size=64, learning_rate=5e-4, optimizer="adam", weight_decay=0.0,
                      schedule="cosine", early_stopping_patience=3),
)

# ETTh1 at the paper's width with its recipe (scripts/SegRNN/Lookback_96/etth1.sh: d_model 512, seg 24,
# dropout 0.5, MSE, batch 256, lr 1e-3, lradj type3) and PyTorch's initialisation; 20 epochs (paper 30,
# patience 10: the step schedule has decayed the LR to 0.8^16 by then). About 20-25 s an epoch on 2 CPU
# cores at H=192 (docs/results.md has each horizon's wall time); `--set data.horizon=H`.
_ETTH1 = dataclasses.replace(
    _ETT, model=dataclasses.replace(_ETT.model, d_model=512, loss="mse", init="fan_in"),
    train=dataclasses.replace(_ETT.train, epochs=20, batch_size=256, learning_rate=1e-3, schedule="step",
                              early_stopping_patience=10))

# ETTh2: the `ett` settings (d_model 256, MAE, which ETTh2's spikes favour: SegRNN's own MSE/lr 2e-4 recipe
# gave 0.294 at H=96) with PyTorch's initialisation and 10 epochs (early stopping, patience 3).
# About 1.5-4 minutes a horizon on 2 CPU cores; `--set data.horizon=H`.
_ETTH2 = dataclasses.replace(
    _ETT, data=dataclasses.replace(_ETT.data, path="timeseries/ETTh2.csv"),
    model=dataclasses.replace(_ETT.model, init="fan_in"), train=dataclasses.replace(_ETT.train, epochs=10))

# Input 720 (SegRNN's Table 2 protocol; the test windows forecast the same hours as at input 96), sized for a
# CPU: segments of 48 (15 recurrent steps; the paper: 24, d_model 512, 30 epochs, lr 3e-4). ETTh1: the `ett`
# settings with PyTorch's initialisation; ETTh2: the `etth2` settings with lr 2e-4 (lower validation loss than
# 5e-4 at 3 of 4 horizons). 2-5 minutes a horizon on 2 CPU cores; `--set data.horizon=H`.
_ETTH1_720 = dataclasses.replace(
    _ETT, data=dataclasses.replace(_ETT.data, input_length=720),
    model=dataclasses.replace(_ETT.model, seg_len=48, init="fan_in"))
_ETTH2_720 = dataclasses.replace(
    _ETTH2, data=dataclasses.replace(_ETTH2.data, input_length=720),
    model=dataclasses.replace(_ETTH2.model, seg_len=48), train=dataclasses.replace(_ETTH2.train, learning_rate=2e-4))

# Input 720 at the paper's width and recipe (scripts/SegRNN/etth1.sh / etth2.sh, Table 2): seg 24 (30 recurrent
# steps), d_model 512, MSE, batch 64, lr 3e-4 with lradj type3 (the step schedule), up to 30 epochs, patience 5,
# dropout 0.1 for ETTh1 and 0.5 for ETTh2; PyTorch's initialisation. For a GPU: on 2 CPU cores an epoch takes
# minutes (docs/results.md, "Input 720 at the paper's width"); `--set data.horizon=H`.
_ETTH1_720_GPU = dataclasses.replace(
    _ETTH1_720, model=dataclasses.replace(_ETTH1_720.model, d_model=512, seg_len=24, dropout_rate=0.1, loss="mse"),
    train=dataclasses.replace(_ETTH1_720.train, epochs=30, batch_size=64, learning_rate=3e-4, schedule="step",
                              early_stopping_patience=5))
_ETTH2_720_GPU = dataclasses.replace(
    _ETTH1_720_GPU, data=dataclasses.replace(_ETTH1_720_GPU.data, path="timeseries/ETTh2.csv"),
    model=dataclasses.replace(_ETTH1_720_GPU.model, dropout_rate=0.5))

PRESETS = {
    "tiny": Config(
        data=DataConfig(source="co2", input_length=24, horizon=8, max_train_windows=256),
        model=ModelConfig(kind="segrnn", d_model=8, seg_len=8, dropout_rate=0.0, quantiles=(0.1, 0.5, 0.9)),
        eval=EvalConfig(backtest_windows=2),
        train=TrainConfig(epochs=1, batch_size=64, learning_rate=1e-2, optimizer="adam", schedule="constant"),
    ),
    "default": DEFAULT,
    "ett": _ETT,
    "etth1": _ETTH1,
    "etth2": _ETTH2,
    "etth1-720": _ETTH1_720,
    "etth2-720": _ETTH2_720,
    "etth1-720-gpu": _ETTH1_720_GPU,
    "etth2-720-gpu": _ETTH2_720_GPU,
    # exchange_rate (daily, 8 currencies; 70/10/20 split) at the benchmark's input 96, horizons 96-720
    # (`--set data.horizon=H`): SegRNN with the `ett` settings, kept only when it beats naive, seasonal
    # naive and DLinear on validation (a random-walk-like series where repeating the last value is hard
    # to beat; docs/results.md has the table of which model wins where).
    "exchange": dataclasses.replace(
        _ETT, data=dataclasses.replace(_ETT.data, path="timeseries/exchange_rate.csv"),
        model=dataclasses.replace(_ETT.model, kind="auto", auto_network="segrnn")),
    # national_illness (weekly ILI, 7 columns; 966 rows) at SegRNN's input 60, horizons 24-60 (`--set
    # data.horizon=H`) with its settings for this file (scripts/SegRNN/ill.sh: d_model 512, RevIN, no
    # dropout, MSE, batch 16, lr 1e-3, 30 epochs, patience 10); few windows, so validation picks the
    # network or a baseline.
    "illness": Config(
        data=DataConfig(source="tslib", path="timeseries/national_illness.csv", input_length=60, horizon=24,
                        features="M"),
        model=ModelConfig(kind="auto", auto_network="segrnn", d_model=512, seg_len=12, dropout_rate=0.0,
                          normalization="revin", loss="mse"),
        eval=EvalConfig(backtest_windows=5),
        train=TrainConfig(epochs=30, batch_size=16, learning_rate=1e-3, optimizer="adam", weight_decay=0.0,
                          schedule="cosine", early_stopping_patience=10),
    ),
    "gpu": Config(
        data=DataConfig(source="tslib", path="timeseries/ETTh1.csv", input_length=96, horizon=96, features="M"),
        model=ModelConfig(kind="segrnn", d_model=512, seg_len=24, dropout_rate=0.5, normalization="last", loss="mae"),
        train=TrainConfig(epochs=30, batch_size=256, learning_rate=1e-3, optimizer="adam", weight_decay=0.0,
                          schedule="cosine", early_stopping_patience=10, steps_per_execution=8),
    ),
}
