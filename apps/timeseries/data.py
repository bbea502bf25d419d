"""Loading, checking, splitting and windowing time series.

Sources: statsmodels' bundled real series (`co2`, `sunspots`; offline), any CSV with a
datetime column and value columns (`csv`), and Time-Series-Library benchmark files
`date,...,OT` (`tslib`, e.g. ETTh1 from the shared data folder). Splits follow the
benchmark convention: ETT 12/4/4 months, others 70/10/20, with the val/test parts
starting `input_length` rows early so that their first window sees real history.
The scaler is fitted on the training rows only.

    series = load_series(cfg.data)
    splits = make_splits(series, cfg.data)   # scaled windows for train/val/test
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from apps.timeseries.config import DataConfig
from common.data import shared_data_dir

ETT_MONTH_HOURS = 30 * 24  # the benchmark's "month" (Informer/Time-Series-Library borders)


@dataclasses.dataclass
class Series:
    """A checked, gap-handled series: `values[t, c]` at `timestamps[t]`."""

    name: str
    timestamps: pd.DatetimeIndex
    values: np.ndarray  # [time, channels] float64, no NaN left
    columns: list[str]
    target: str
    frequency: str  # pandas offset alias, or "irregular"
    seasonal_period: int
    valid: np.ndarray  # [time] bool: False where a value was missing (used by missing="mask")
    missing_report: dict

    @property
    def target_index(self) -> int:
        return self.columns.index(self.target)


@dataclasses.dataclass
class Scaler:
    """Per-channel standardisation fitted on the training rows only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        return cls(mean, np.where(std > 1e-12, std, 1.0))

    def transform(self, values):
        return (values - self.mean) / self.std

    def inverse(self, values):
        return values * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Scaler":
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64))


@dataclasses.dataclass
class Windows:
    """Sliding windows of one split: inputs `x[n, input_length, c]`, targets `y[n, horizon, c]`."""

    x: np.ndarray
    y: np.ndarray
    origins: np.ndarray  # [n] index (into the full series) of each window's first forecast step

    def __len__(self) -> int:
        return len(self.x)


@dataclasses.dataclass
class Splits:
    train: Windows
    val: Windows
    test: Windows
    borders: dict  # {"train": [start, end], ...} row ranges in the full series
    scaler: Scaler
    scaled: np.ndarray  # the whole series, scaled with the training statistics
    masked_windows: int


# ---------------------------------------------------------------- loading


def resolve_path(path: str) -> Path:
    """`path` as given, else relative to the shared data folder (so `timeseries/ETTh1.csv` works)."""
    if not path:
        raise ValueError("data.path is empty: pass --set data.path=FILE.csv for source=csv or tslib")
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    root = shared_data_dir()
    if root is not None and (root / path).is_file():
        return root / path
    raise FileNotFoundError(f"data file {path} not found (also looked under the shared data folder {root})")


def _statsmodels_frame(source: str) -> pd.DataFrame:
    import statsmodels.api as sm

    if source == "co2":
        # Mauna Loa weekly CO2 (ppm), 1958-2001, 59 weeks missing: a real gap-handling case.
        frame = sm.datasets.co2.load_pandas().data
        frame.index.name = "date"
        return frame.reset_index()
    # Yearly sunspot numbers 1700-2008.
    frame = sm.datasets.sunspots.load_pandas().data
    years = frame["YEAR"].astype(int).astype(str)
    return pd.DataFrame({"date": pd.to_datetime(years, format="%Y"), "sunactivity": frame["SUNACTIVITY"].to_numpy()})


def read_frame(cfg: DataConfig) -> tuple[pd.DataFrame, str]:
    """The raw table and a display name for the configured source."""
    if cfg.source in ("co2", "sunspots"):
        if cfg.path:  # never train on the bundled series while the user believes it is their file
            raise ValueError(f"data.path={cfg.path!r} is read only by data.source=csv or tslib, and "
                             f"data.source={cfg.source!r} ignores it; add --set data.source=csv "
                             f"(or tslib for the ETT/benchmark files)")
        return _statsmodels_frame(cfg.source), cfg.source
    path = resolve_path(cfg.path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path} as CSV: {str(err).splitlines()[0]}") from err
    return frame, path.stem


def infer_seasonal_period(frequency: str, timestamps: pd.DatetimeIndex) -> int:
    """Seasonal lag in steps: daily cycle for sub-daily data, weekly for daily, yearly beyond."""
    if frequency == "irregular" or len(timestamps) < 2:
        return 1
    step = pd.Timedelta(timestamps[1] - timestamps[0])
    if step < pd.Timedelta(days=1):
        return max(1, int(round(pd.Timedelta(days=1) / step)))  # hourly -> 24, 15 min -> 96
    name = pd.tseries.frequencies.to_offset(frequency).name.upper()
    for prefix, period in (("W", 52), ("MS", 12), ("ME", 12), ("M", 12), ("QS", 4), ("QE", 4), ("Q", 4),
                           ("YS", 1), ("YE", 1), ("Y", 1), ("A", 1), ("B", 5), ("D", 7)):
        if name.startswith(prefix):
            return period
    return 1


def _frequency(index: pd.DatetimeIndex, wanted: str) -> tuple[str, pd.DatetimeIndex]:
    """The offset alias and the regular index the rows should sit on (gaps become missing rows)."""
    if wanted:
        try:
            offset = pd.tseries.frequencies.to_offset(wanted)
        except ValueError as err:
            raise ValueError(f"data.frequency={wanted!r} is not a pandas offset alias (e.g. H, D, W-SAT, MS)") from err
        return offset.freqstr, pd.date_range(index[0], index[-1], freq=offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset object
        inferred = pd.infer_freq(index) if len(index) >= 3 else None
    if inferred:
        return str(inferred), index
    # Rows missing from an otherwise regular grid: fill the grid when the median step explains every row.
    step = pd.Series(index).diff().median()
    grid = pd.date_range(index[0], index[-1], freq=step)
    if index.isin(grid).all():
        return pd.tseries.frequencies.to_offset(step).freqstr, grid
    return "irregular", index


def load_series(cfg: DataConfig) -> Series:
    """Reads the configured source, checks it, handles missing values and returns a `Series`."""
    frame, name = read_frame(cfg)
    return series_from_frame(frame, cfg, name)


def series_from_frame(frame: pd.DataFrame, cfg: DataConfig, name: str = "series") -> Series:
    if frame.empty or len(frame.columns) < 2:
        raise ValueError(f"{name}: need a datetime column and at least one value column, got columns {list(frame.columns)}")
    date_column = cfg.date_column or ("date" if "date" in frame.columns else str(frame.columns[0]))
    if date_column not in frame.columns:
        raise ValueError(f"{name}: date column {date_column!r} not found; columns are {list(frame.columns)} (set data.date_column)")
    timestamps = pd.to_datetime(frame[date_column], errors="coerce")
    if timestamps.isna().any():
        row = int(np.flatnonzero(timestamps.isna().to_numpy())[0])
        raise ValueError(f"{name}: unparseable timestamp {frame[date_column].iloc[row]!r} in column {date_column!r} at row {row}")
    steps = np.diff(timestamps.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ValueError(
            f"{name}: timestamps must be strictly increasing, but row {row} ({timestamps.iloc[row]}) does not come after "
            f"row {row - 1} ({timestamps.iloc[row - 1]}); sort the file and drop duplicates"
        )
    value_columns = [c for c in frame.columns if c != date_column]
    if cfg.columns:
        unknown = [c for c in cfg.columns if c not in value_columns]
        if unknown:
            raise ValueError(f"{name}: column(s) {unknown} not found; available value columns: {value_columns}")
        value_columns = list(cfg.columns)
    target = cfg.target or ("OT" if "OT" in value_columns else value_columns[-1])
    if target not in value_columns:
        raise ValueError(f"{name}: target column {target!r} not found; available value columns: {value_columns}")
    if cfg.features == "S":
        value_columns = [target]
    values = frame[value_columns].apply(pd.to_numeric, errors="coerce")
    unparsed = values.isna() & frame[value_columns].notna()
    if unparsed.any().any():
        column = values.columns[unparsed.any().to_numpy()][0]
        row = int(np.flatnonzero(unparsed[column].to_numpy())[0])
        raise ValueError(f"{name}: column {column!r} holds a non-numeric value {frame[column].iloc[row]!r} at row {row}")
    array = values.to_numpy(dtype=np.float64)
    if np.isinf(array).any():
        row, col = np.argwhere(np.isinf(array))[0]
        raise ValueError(f"{name}: infinite value in column {value_columns[col]!r} at row {row}; clean the file first")

    index = pd.DatetimeIndex(timestamps)
    frequency, grid = _frequency(index, cfg.frequency)
    table = pd.DataFrame(array, index=index, columns=value_columns)
    added = 0
    if len(grid) != len(index):
        added = len(grid) - len(index)
        table = table.reindex(grid)
    missing = table.isna().to_numpy()
    report = {"policy": cfg.missing, "missing_values": int(missing.sum()), "missing_timestamps_added": int(added),
              "interpolated_values": 0, "masked_windows": 0}
    if missing.any():
        empty = [c for c, m in zip(value_columns, missing.all(axis=0)) if m]
        if empty:
            raise ValueError(f"{name}: column(s) {empty} hold no values at all")
        if cfg.missing == "error":
            row, col = np.argwhere(missing)[0]
            raise ValueError(
                f"{name}: {int(missing.sum())} missing (NaN) values, first in column {value_columns[col]!r} at "
                f"{table.index[row]}; set data.missing=interpolate or mask"
            )
        method = "time" if frequency != "irregular" else "linear"
        table = table.interpolate(method=method, limit_direction="both").ffill().bfill()
        if cfg.missing == "interpolate":
            report["interpolated_values"] = int(missing.sum())
    period = cfg.seasonal_period or (11 if cfg.source == "sunspots" else infer_seasonal_period(frequency, table.index))
    return Series(
        name=name, timestamps=pd.DatetimeIndex(table.index), values=table.to_numpy(dtype=np.float64),
        columns=value_columns, target=target, frequency=frequency, seasonal_period=int(period),
        valid=~missing.any(axis=1), missing_report=report,
    )


# ---------------------------------------------------------------- splitting and windows


def split_kind(cfg: DataConfig, name: str) -> str:
    if cfg.split != "auto":
        return cfg.split
    upper = name.upper()
    if upper.startswith("ETTH"):
        return "ett_hour"
    if upper.startswith("ETTM"):
        return "ett_minute"
    return "ratio"


def split_borders(num_rows: int, cfg: DataConfig, name: str = "series") -> dict:
    """Row ranges `[start, end)` per split; val/test start `input_length` early (benchmark convention)."""
    length = cfg.input_length
    kind = split_kind(cfg, name)
    if kind.startswith("ett"):
        month = ETT_MONTH_HOURS * (4 if kind == "ett_minute" else 1)
        ends = [12 * month, 16 * month, 20 * month]
        if num_rows < ends[-1]:
            raise ValueError(f"{name}: the ETT split needs {ends[-1]} rows (12/4/4 months), the series has {num_rows}; "
                             f"use --set data.split=ratio")
    else:
        if not (0 < cfg.train_ratio < 1 and 0 < cfg.test_ratio < 1 and cfg.train_ratio + cfg.test_ratio < 1):
            raise ValueError(f"train_ratio={cfg.train_ratio} and test_ratio={cfg.test_ratio} must be in (0, 1) and sum below 1")
        num_train = int(num_rows * cfg.train_ratio)
        num_test = int(num_rows * cfg.test_ratio)
        ends = [num_train, num_rows - num_test, num_rows]
    starts = [0, ends[0] - length, ends[1] - length]
    borders = {part: [max(0, s), e] for part, s, e in zip(("train", "val", "test"), starts, ends)}
    need = cfg.input_length + cfg.horizon
    for part, (start, end) in borders.items():
        if end - start < need:
            raise ValueError(
                f"{name}: series too short for input_length={cfg.input_length} + horizon={cfg.horizon}: the {part} split "
                f"has {end - start} rows but a window needs {need} (series has {num_rows} rows); shorten the window or horizon"
            )
    return borders


def windows(values: np.ndarray, start: int, end: int, input_length: int, horizon: int,
            valid: np.ndarray | None = None, stride: int = 1) -> tuple[Windows, int]:
    """Every window (stride 1 by default) inside rows `[start, end)`; drops windows touching invalid rows."""
    count = end - start - input_length - horizon + 1
    firsts = np.arange(start, start + max(count, 0), stride)
    dropped = 0
    if valid is not None and len(firsts):
        bad = np.concatenate([[0], np.cumsum(~valid)])
        keep = bad[firsts + input_length + horizon] - bad[firsts] == 0
        dropped = int((~keep).sum())
        firsts = firsts[keep]
    span = np.lib.stride_tricks.sliding_window_view(values, input_length + horizon, axis=0)  # [n, c, L+H]
    chunk = np.transpose(span[firsts], (0, 2, 1)).astype(np.float32)  # [n, L+H, c]
    return Windows(chunk[:, :input_length], chunk[:, input_length:], firsts + input_length), dropped


def make_splits(series: Series, cfg: DataConfig) -> Splits:
    """Fits the scaler on the training rows and cuts train/val/test windows of the scaled series."""
    borders = split_borders(len(series.values), cfg, series.name)
    start, end = borders["train"]
    train_rows = series.values[start:end][series.valid[start:end]]
    scaler = Scaler.fit(train_rows if len(train_rows) else series.values[start:end])
    scaled = scaler.transform(series.values)
    valid = series.valid if cfg.missing == "mask" else None
    parts, masked = {}, 0
    for part, (s, e) in borders.items():
        parts[part], dropped = windows(scaled, s, e, cfg.input_length, cfg.horizon, valid)
        masked += dropped
        if len(parts[part]) == 0:
            raise ValueError(f"{series.name}: no {part} window without missing values; use data.missing=interpolate")
    train = parts["train"]
    if cfg.max_train_windows and len(train) > cfg.max_train_windows:
        pick = np.linspace(0, len(train) - 1, cfg.max_train_windows).round().astype(int)
        train = Windows(train.x[pick], train.y[pick], train.origins[pick])
    series.missing_report["masked_windows"] = masked
    return Splits(train, parts["val"], parts["test"], borders, scaler, scaled, masked)
