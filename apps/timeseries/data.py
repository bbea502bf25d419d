"""Loading, checking, splitting and windowing time series.

Covariates: past-observed columns (`data.past_covariates`), known-future columns
(`data.future_covariates`) and calendar features of the timestamps (`data.calendar`, sin/cos
pairs) are kept apart from the forecast channels, scaled with their own training statistics and
cut into windows beside them (`Windows.past [n, input_length, P]`, `Windows.future
[n, input_length + horizon, F]`); `Windows.inputs` is what the model takes.

Sources: statsmodels' bundled real series (`co2`, `sunspots`; offline), any CSV with a
datetime column and value columns (`csv`), and Time-Series-Library benchmark files
`date,...,OT` (`tslib`, e.g. ETTh1 from the shared data folder). Long-format files (many series,
`data.id_column`) and the generated panel (`synthetic_panel`) are read here and split per series
in apps.timeseries.panel. Splits follow the
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

from apps.timeseries.config import CALENDAR_FEATURES, DataConfig
from common.data import shared_data_dir
from common.errors import ConfigError, DataError

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
    past_covariates: np.ndarray | None = None  # [time, P] observed-only covariates, or None
    future_covariates: np.ndarray | None = None  # [time, F] known-future covariates (user columns, then calendar), or None
    past_covariate_names: list[str] = dataclasses.field(default_factory=list)
    future_covariate_names: list[str] = dataclasses.field(default_factory=list)

    @property
    def target_index(self) -> int:
        return self.columns.index(self.target)

    @property
    def covariate_sizes(self) -> dict:
        """`build_model` keyword arguments: how many past and known-future covariates the model takes."""
        return {"num_past_covariates": len(self.past_covariate_names),
                "num_future_covariates": len(self.future_covariate_names)}


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
    past: np.ndarray | None = None  # [n, input_length, P] past-observed covariates
    future: np.ndarray | None = None  # [n, input_length + horizon, F] known-future covariates

    def __len__(self) -> int:
        return len(self.x)

    @property
    def inputs(self):
        """What the model takes: the window array, or a dict with the covariates when there are any."""
        if self.past is None and self.future is None:
            return self.x
        inputs = {"window": self.x}
        if self.past is not None:
            inputs["past_covariates"] = self.past
        if self.future is not None:
            inputs["future_covariates"] = self.future
        return inputs

    def subset(self, pick: np.ndarray) -> "Windows":
        return Windows(self.x[pick], self.y[pick], self.origins[pick],
                       None if self.past is None else self.past[pick], None if self.future is None else self.future[pick])


@dataclasses.dataclass
class Splits:
    train: Windows
    val: Windows
    test: Windows
    borders: dict  # {"train": [start, end], ...} row ranges in the full series
    scaler: Scaler
    scaled: np.ndarray  # the whole series, scaled with the training statistics
    masked_windows: int
    covariate_scaler: Scaler | None = None  # over [past | future] covariate columns, fitted on the training rows
    scaled_past: np.ndarray | None = None  # [time, P]
    scaled_future: np.ndarray | None = None  # [time, F]
    input_length: int = 0
    horizon: int = 0

    def windows_at(self, origins) -> Windows:
        """The windows whose first forecast step is at each of `origins` (rows of the full series)."""
        origins = np.asarray(origins, dtype=int)
        length, horizon = self.input_length, self.horizon
        x = np.stack([self.scaled[o - length:o] for o in origins]).astype(np.float32)
        y = np.stack([self.scaled[o:o + horizon] for o in origins]).astype(np.float32)
        past = None if self.scaled_past is None else np.stack(
            [self.scaled_past[o - length:o] for o in origins]).astype(np.float32)
        future = None if self.scaled_future is None else np.stack(
            [self.scaled_future[o - length:o + horizon] for o in origins]).astype(np.float32)
        return Windows(x, y, origins, past, future)

    def covariate_state(self) -> dict:
        """Covariate names and scaling for preprocessing.json (forecast/export need them)."""
        if self.covariate_scaler is None:
            return {}
        return {"covariate_scaler": self.covariate_scaler.to_dict()}


# ---------------------------------------------------------------- loading


def resolve_path(path: str) -> Path:
    """`path` as given, else relative to the shared data folder (so `timeseries/ETTh1.csv` works)."""
    if not path:
        raise ConfigError("data.path is empty: pass --set data.path=FILE.csv for source=csv or tslib")
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    root = shared_data_dir()
    if root is not None and (root / path).is_file():
        return root / path
    raise DataError(f"data file {path} not found (also looked under the shared data folder {root})")


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


def synthetic_panel_frame(num_series: int = 6, length: int = 720, seed: int = 0, id_column: str = "id",
                          date_column: str = "date", value_column: str = "value") -> pd.DataFrame:
    """A long-format panel of hourly series (`id, date, value`) for tests and demos, made offline.

    Each series has its own level (1 to 1000: scales differ by orders of magnitude), season
    (8, 12 or 24 hours, plus a weaker half-period harmonic), phase, trend, noise and start time,
    so one global model must rely on per-series scaling and on the window's own shape.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    levels = rng.permutation(10.0 ** np.linspace(0.0, 3.0, num_series))  # log-spaced, in random order
    parts = []
    for i, level in enumerate(levels):
        period = (24, 12, 24, 8)[i % 4]
        amplitude = level * rng.uniform(0.2, 0.5)
        phase, phase2 = rng.uniform(0.0, 2 * np.pi, size=2)
        values = (level + amplitude * np.sin(2 * np.pi * t / period + phase)
                  + 0.3 * amplitude * np.sin(4 * np.pi * t / period + phase2)
                  + level * rng.uniform(-0.2, 0.2) * t / length
                  + 0.05 * amplitude * rng.standard_normal(length))
        start = pd.Timestamp("2022-01-01") + pd.Timedelta(hours=int(rng.integers(0, 48)))
        parts.append(pd.DataFrame({id_column: f"s{i}", date_column: pd.date_range(start, periods=length, freq="h"),
                                   value_column: values}))
    return pd.concat(parts, ignore_index=True)


def check_source_path(cfg: DataConfig) -> None:
    """A `data.path` with a source that reads no file (bundled or generated series) is refused: never
    train on other data while the user believes it is their file. The app checks it before any data
    loads; `read_frame` again for library callers."""
    if not cfg.path:
        return
    if cfg.source == "synthetic_panel":
        raise ConfigError(f"data.path={cfg.path!r} is not read by data.source=synthetic_panel (it generates its "
                          f"series); use data.source=csv with data.id_column to read a long-format file")
    if cfg.source in ("co2", "sunspots"):
        raise ConfigError(f"data.path={cfg.path!r} is read only by data.source=csv or tslib, and "
                          f"data.source={cfg.source!r} ignores it; add --set data.source=csv "
                          f"(or tslib for the ETT/benchmark files)")


def read_frame(cfg: DataConfig) -> tuple[pd.DataFrame, str]:
    """The raw table and a display name for the configured source."""
    check_source_path(cfg)
    if cfg.source == "synthetic_panel":
        return synthetic_panel_frame(cfg.panel_series, cfg.panel_length, id_column=cfg.id_column or "id",
                                     date_column=cfg.date_column or "date",
                                     value_column=cfg.target or "value"), "synthetic_panel"
    if cfg.source in ("co2", "sunspots"):
        return _statsmodels_frame(cfg.source), cfg.source
    path = resolve_path(cfg.path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path} as CSV: {str(err).splitlines()[0]}") from err
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
            raise ConfigError(f"data.frequency={wanted!r} is not a pandas offset alias (e.g. H, D, W-SAT, MS)") from err
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


def _auto_calendar(frequency: str, timestamps: pd.DatetimeIndex) -> tuple[str, ...]:
    """The calendar features that vary within a season of data at this frequency."""
    if len(timestamps) < 2:
        return ()
    step = pd.Timedelta(timestamps[1] - timestamps[0])
    if step < pd.Timedelta(hours=1):
        return ("minute", "hour", "day_of_week")
    if step < pd.Timedelta(days=1):
        return ("hour", "day_of_week")
    if step < pd.Timedelta(days=7):
        return ("day_of_week", "day_of_year")
    if step < pd.Timedelta(days=28):
        return ("week_of_year",)
    return ("month",)


def calendar_features(timestamps, names, frequency: str = "") -> tuple[np.ndarray, list[str]]:
    """`[time, 2 * features]` sin/cos of each feature's phase in its cycle, and the column names.

    Sin/cos pairs keep a cycle's ends together (23 h is next to 0 h) and need no scaling.
    `names` may hold "auto" (the features that vary at the series' frequency).
    """
    index = pd.DatetimeIndex(timestamps)
    chosen: list[str] = []
    for name in names:
        for item in (_auto_calendar(frequency, index) if name == "auto" else (name,)):
            if item not in CALENDAR_FEATURES:
                raise ConfigError(f"unknown calendar feature {item!r}; choose from {CALENDAR_FEATURES} or auto")
            if item not in chosen:
                chosen.append(item)
    phases = {
        "minute": lambda: index.minute / 60.0,
        "hour": lambda: (index.hour + index.minute / 60.0) / 24.0,
        "day_of_week": lambda: index.dayofweek / 7.0,
        "day_of_month": lambda: (index.day - 1) / index.days_in_month,
        "day_of_year": lambda: (index.dayofyear - 1) / (365.0 + index.is_leap_year),
        "week_of_year": lambda: (index.isocalendar().week.to_numpy() - 1) / 52.0,
        "month": lambda: (index.month - 1) / 12.0,
    }
    columns, out = [], []
    for name in chosen:
        phase = 2 * np.pi * np.asarray(phases[name](), dtype=np.float64)
        out += [np.sin(phase), np.cos(phase)]
        columns += [f"{name}_sin", f"{name}_cos"]
    values = np.stack(out, axis=1) if out else np.zeros((len(index), 0))
    return values, columns


def load_series(cfg: DataConfig) -> Series:
    """Reads the configured source, checks it, handles missing values and returns a `Series`."""
    frame, name = read_frame(cfg)
    return series_from_frame(frame, cfg, name)


def series_from_frame(frame: pd.DataFrame, cfg: DataConfig, name: str = "series") -> Series:
    if len(frame.columns) == 1:
        for separator, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if separator in str(frame.columns[0]):
                raise DataError(f"{name}: one column {str(frame.columns[0])[:60]!r}: the file seems separated by {word}; "
                                f"save it comma-separated")
    if len(frame.columns) < 2:
        raise DataError(f"{name}: need a datetime column and at least one value column, got columns {list(frame.columns)}")
    if frame.empty:
        raise DataError(f"{name}: no rows under the header {list(frame.columns)}")
    date_column = cfg.date_column or ("date" if "date" in frame.columns else str(frame.columns[0]))
    if date_column not in frame.columns:
        raise DataError(f"{name}: date column {date_column!r} not found; columns are {list(frame.columns)} (set data.date_column)")
    column = frame[date_column]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_datetime64_any_dtype(column):
        # pandas would read plain numbers as nanoseconds since 1970 and drop the column from the values.
        raise DataError(f"{name}: column {date_column!r} holds numbers ({column.iloc[0]!r}, ...), not dates: the file "
                        f"seems to have no date column. Add one (e.g. date,{date_column},...), or name the date column "
                        f"with --set data.date_column=NAME")
    timestamps = pd.to_datetime(column, errors="coerce")
    if timestamps.isna().any():
        row = int(np.flatnonzero(timestamps.isna().to_numpy())[0])
        raise DataError(f"{name}: unparseable timestamp {frame[date_column].iloc[row]!r} in column {date_column!r} at row {row}")
    steps = np.diff(timestamps.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise DataError(
            f"{name}: timestamps must be strictly increasing, but row {row} ({timestamps.iloc[row]}) does not come after "
            f"row {row - 1} ({timestamps.iloc[row - 1]}); sort the file and drop duplicates"
        )
    available = [c for c in frame.columns if c != date_column]
    past_names, future_names = list(cfg.past_covariates), list(cfg.future_covariates)
    for kind, names in (("past_covariates", past_names), ("future_covariates", future_names)):
        unknown = [c for c in names if c not in available]
        if unknown:
            raise DataError(f"{name}: data.{kind} column(s) {unknown} not found; available columns: {available}")
    both = sorted(set(past_names) & set(future_names))
    if both:
        raise DataError(f"{name}: column(s) {both} are in both data.past_covariates and data.future_covariates; "
                         f"name each in one (future if its values are known ahead)")
    covariate_names = past_names + future_names
    value_columns = [c for c in available if c not in covariate_names]
    if cfg.columns:
        unknown = [c for c in cfg.columns if c not in available]
        if unknown:
            raise DataError(f"{name}: column(s) {unknown} not found; available value columns: {value_columns}")
        clash = [c for c in cfg.columns if c in covariate_names]
        if clash:
            raise DataError(f"{name}: column(s) {clash} are both forecast (data.columns) and covariates; a column is "
                             f"one or the other")
        value_columns = list(cfg.columns)
    if not value_columns:
        raise DataError(f"{name}: no column is left to forecast once the covariates {covariate_names} are set aside")
    target = cfg.target or ("OT" if "OT" in value_columns else value_columns[-1])
    if target not in value_columns:
        raise DataError(f"{name}: target column {target!r} not found; available value columns: {value_columns}")
    if cfg.features == "S":
        value_columns = [target]
    read_columns = value_columns + covariate_names
    values = frame[read_columns].apply(pd.to_numeric, errors="coerce")
    unparsed = values.isna() & frame[read_columns].notna()
    if unparsed.any().any():
        column = values.columns[unparsed.any().to_numpy()][0]
        row = int(np.flatnonzero(unparsed[column].to_numpy())[0])
        raise DataError(f"{name}: column {column!r} holds a non-numeric value {frame[column].iloc[row]!r} at row {row}")
    array = values.to_numpy(dtype=np.float64)
    if np.isinf(array).any():
        row, col = np.argwhere(np.isinf(array))[0]
        raise DataError(f"{name}: infinite value in column {read_columns[col]!r} at row {row}; clean the file first")

    index = pd.DatetimeIndex(timestamps)
    frequency, grid = _frequency(index, cfg.frequency)
    table = pd.DataFrame(array, index=index, columns=read_columns)
    added = 0
    if len(grid) != len(index):
        added = len(grid) - len(index)
        table = table.reindex(grid)
    missing = table.isna().to_numpy()
    report = {"policy": cfg.missing, "missing_values": int(missing.sum()), "missing_timestamps_added": int(added),
              "interpolated_values": 0, "masked_windows": 0}
    if missing.any():
        empty = [c for c, m in zip(read_columns, missing.all(axis=0)) if m]
        if empty:
            raise DataError(f"{name}: column(s) {empty} hold no values at all")
        if cfg.missing == "error":
            row, col = np.argwhere(missing)[0]
            raise DataError(
                f"{name}: {int(missing.sum())} missing (NaN) values, first in column {read_columns[col]!r} at "
                f"{table.index[row]}; set data.missing=interpolate or mask"
            )
        method = "time" if frequency != "irregular" else "linear"
        table = table.interpolate(method=method, limit_direction="both").ffill().bfill()
        if cfg.missing == "interpolate":
            report["interpolated_values"] = int(missing.sum())
    period = cfg.seasonal_period or (11 if cfg.source == "sunspots" else infer_seasonal_period(frequency, table.index))
    timestamps = pd.DatetimeIndex(table.index)
    calendar, calendar_names = calendar_features(timestamps, cfg.calendar, frequency)
    past = table[past_names].to_numpy(dtype=np.float64) if past_names else None
    future = np.concatenate([table[future_names].to_numpy(dtype=np.float64), calendar], axis=1)
    return Series(
        name=name, timestamps=timestamps, values=table[value_columns].to_numpy(dtype=np.float64),
        columns=value_columns, target=target, frequency=frequency, seasonal_period=int(period),
        valid=~missing.any(axis=1), missing_report=report,
        past_covariates=past, future_covariates=future if future.shape[1] else None,
        past_covariate_names=past_names, future_covariate_names=future_names + calendar_names,
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


def split_borders(num_rows: int, cfg: DataConfig, name: str = "series", trained: bool = False) -> dict:
    """Row ranges `[start, end)` per split; val/test start `input_length` early (benchmark convention).
    `trained`: the windows are a trained run's, so a too-short series is not fixed by a shorter window."""
    length = cfg.input_length
    kind = split_kind(cfg, name)
    if kind.startswith("ett"):
        month = ETT_MONTH_HOURS * (4 if kind == "ett_minute" else 1)
        ends = [12 * month, 16 * month, 20 * month]
        if num_rows < ends[-1]:
            raise DataError(f"{name}: the ETT split needs {ends[-1]} rows (12/4/4 months), the series has {num_rows}; "
                             f"use --set data.split=ratio")
    else:
        if not (0 < cfg.train_ratio < 1 and 0 < cfg.test_ratio < 1 and cfg.train_ratio + cfg.test_ratio < 1):
            raise ConfigError(f"train_ratio={cfg.train_ratio} and test_ratio={cfg.test_ratio} must be in (0, 1) and sum below 1")
        num_train = int(num_rows * cfg.train_ratio)
        num_test = int(num_rows * cfg.test_ratio)
        ends = [num_train, num_rows - num_test, num_rows]
    starts = [0, ends[0] - length, ends[1] - length]
    borders = {part: [max(0, s), e] for part, s, e in zip(("train", "val", "test"), starts, ends)}
    need = cfg.input_length + cfg.horizon
    for part, (start, end) in borders.items():
        if end - start < need:
            raise DataError(
                f"{name}: series too short for input_length={cfg.input_length} + horizon={cfg.horizon}: the {part} split "
                f"has {end - start} rows but a window needs {need} (series has {num_rows} rows); "
                + ("the trained run's window is fixed: score every window of a short file with evaluate --data FILE"
                   if trained else "shorten the window or horizon")
            )
    return borders


def windows(values: np.ndarray, start: int, end: int, input_length: int, horizon: int,
            valid: np.ndarray | None = None, stride: int = 1, past: np.ndarray | None = None,
            future: np.ndarray | None = None) -> tuple[Windows, int]:
    """Every window (stride 1 by default) inside rows `[start, end)`; drops windows touching invalid rows.

    `past` / `future` (`[time, P]` / `[time, F]`) are cut beside the values: the input rows for
    past covariates, the input and horizon rows for known-future ones.
    """
    count = end - start - input_length - horizon + 1
    firsts = np.arange(start, start + max(count, 0), stride)
    dropped = 0
    if valid is not None and len(firsts):
        bad = np.concatenate([[0], np.cumsum(~valid)])
        keep = bad[firsts + input_length + horizon] - bad[firsts] == 0
        dropped = int((~keep).sum())
        firsts = firsts[keep]
    def cut(array):
        span = np.lib.stride_tricks.sliding_window_view(array, input_length + horizon, axis=0)  # [n, c, L+H]
        return np.transpose(span[firsts], (0, 2, 1)).astype(np.float32)  # [n, L+H, c]

    chunk = cut(values)
    return Windows(chunk[:, :input_length], chunk[:, input_length:], firsts + input_length,
                   None if past is None else cut(past)[:, :input_length],
                   None if future is None else cut(future)), dropped


Fitted = tuple[Scaler, "Scaler | None"]  # a trained run's (value scaler, covariate scaler), from preprocessing.json


def _scale(series: Series, start: int, end: int, fitted: Fitted | None) -> tuple:
    """(scaler, scaled values, covariate scaler, scaled past, scaled future): fitted on rows `[start, end)`
    (their valid ones), or `fitted`, a trained run's scalers, so that other rows are scaled as it was trained."""
    train_rows = series.values[start:end][series.valid[start:end]]
    if fitted is None:
        scaler = Scaler.fit(train_rows if len(train_rows) else series.values[start:end])
    else:
        scaler = fitted[0]
    scaled = scaler.transform(series.values)
    covariate_scaler, scaled_past, scaled_future = None, None, None
    blocks = [b for b in (series.past_covariates, series.future_covariates) if b is not None]
    if blocks:
        covariates = np.concatenate(blocks, axis=1)
        if fitted is None:
            covariate_rows = covariates[start:end][series.valid[start:end]]
            covariate_scaler = Scaler.fit(covariate_rows if len(covariate_rows) else covariates[start:end])
        else:
            covariate_scaler = fitted[1]
            if covariate_scaler is None or len(covariate_scaler.mean) != covariates.shape[1]:
                raise DataError(f"{series.name}: {covariates.shape[1]} covariate columns, but the trained run scales "
                                f"{0 if covariate_scaler is None else len(covariate_scaler.mean)}")
        scaled_covariates = covariate_scaler.transform(covariates)
        num_past = 0 if series.past_covariates is None else series.past_covariates.shape[1]
        scaled_past = scaled_covariates[:, :num_past] if num_past else None
        scaled_future = scaled_covariates[:, num_past:] if series.future_covariates is not None else None
    return scaler, scaled, covariate_scaler, scaled_past, scaled_future


def make_splits(series: Series, cfg: DataConfig, fitted: Fitted | None = None) -> Splits:
    """Fits the scaler on the training rows (or takes a trained run's `fitted` scalers: the same numbers
    on its own file) and cuts train/val/test windows of the scaled series."""
    borders = split_borders(len(series.values), cfg, series.name, trained=fitted is not None)
    start, end = borders["train"]
    scaler, scaled, covariate_scaler, scaled_past, scaled_future = _scale(series, start, end, fitted)
    valid = series.valid if cfg.missing == "mask" else None
    parts, masked = {}, 0
    for part, (s, e) in borders.items():
        parts[part], dropped = windows(scaled, s, e, cfg.input_length, cfg.horizon, valid,
                                       past=scaled_past, future=scaled_future)
        masked += dropped
        if len(parts[part]) == 0:
            raise DataError(f"{series.name}: no {part} window without missing values; use data.missing=interpolate")
    train = parts["train"]
    if cfg.max_train_windows and len(train) > cfg.max_train_windows:
        pick = np.linspace(0, len(train) - 1, cfg.max_train_windows).round().astype(int)
        train = train.subset(pick)
    series.missing_report["masked_windows"] = masked
    return Splits(train, parts["val"], parts["test"], borders, scaler, scaled, masked, covariate_scaler,
                  scaled_past, scaled_future, cfg.input_length, cfg.horizon)


def whole_series_splits(series: Series, cfg: DataConfig, fitted: Fitted) -> Splits:
    """Every window of `series` as the test split, scaled with a trained run's `fitted` scalers; no train or
    validation rows (`evaluate --data FILE`: a trained forecaster scored on another file, e.g. other years)."""
    need = cfg.input_length + cfg.horizon
    if len(series.values) < need:
        raise DataError(f"{series.name}: {len(series.values)} rows, but one window of the run needs {need} "
                        f"(input_length={cfg.input_length} + horizon={cfg.horizon})")
    scaler, scaled, covariate_scaler, scaled_past, scaled_future = _scale(series, 0, 0, fitted)
    valid = series.valid if cfg.missing == "mask" else None
    test, masked = windows(scaled, 0, len(series.values), cfg.input_length, cfg.horizon, valid,
                           past=scaled_past, future=scaled_future)
    if len(test) == 0:
        raise DataError(f"{series.name}: no window without missing values; use --set data.missing=interpolate")
    empty, _ = windows(scaled, 0, 0, cfg.input_length, cfg.horizon, past=scaled_past, future=scaled_future)
    series.missing_report["masked_windows"] = masked
    borders = {"train": [0, 0], "val": [0, 0], "test": [0, len(series.values)]}
    return Splits(empty, empty, test, borders, scaler, scaled, masked, covariate_scaler, scaled_past, scaled_future,
                  cfg.input_length, cfg.horizon)
