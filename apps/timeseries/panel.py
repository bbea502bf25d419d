"""Many series in one file: long-format loading, per-series checks, splits and scaling.

A long-format CSV has one row per (series, time): `id, date, value[, covariates]`
(`data.id_column` names the id column; `data.target` the value column). Each series becomes its
own univariate `Series` (gap handling, frequency, covariates exactly as for a wide file), is split
in time by the same rule as a wide file (`data.split`, ratio 70/10/20 by default) and scaled with
its own training rows. The windows of every series are pooled to train one global model: each
series is a channel-independent sample of a 1-channel model, so what the model learns from one
series helps the others. `PanelSplits.*_series` says which series each pooled window came from,
so evaluation can score each series and the whole panel.

    panel = load_panel(cfg.data)                 # Panel: ids, one Series per id
    splits = make_panel_splits(panel, cfg.data)  # pooled train/val/test windows + per-series Splits
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from apps.timeseries.config import DataConfig
from apps.timeseries.data import Series, Splits, Windows, make_splits, read_frame, series_from_frame
from common.errors import DataError


def is_long(cfg: DataConfig) -> bool:
    """Whether the configured data is long format (many series, one global model)."""
    return bool(cfg.id_column) or cfg.source == "synthetic_panel"


def id_column_name(cfg: DataConfig) -> str:
    return cfg.id_column or "id"  # the generated panel's id column when none is named


@dataclasses.dataclass
class Panel:
    """Checked series of one long-format table, in the order their ids first appear."""

    name: str
    id_column: str
    date_column: str
    target: str
    ids: list[str]
    series: list[Series]  # one univariate Series per id, columns == [target]
    frequency: str
    seasonal_period: int

    @property
    def columns(self) -> list[str]:
        return [self.target]  # the model sees one channel: each series in turn

    @property
    def past_covariate_names(self) -> list[str]:
        return self.series[0].past_covariate_names

    @property
    def future_covariate_names(self) -> list[str]:
        return self.series[0].future_covariate_names

    @property
    def covariate_sizes(self) -> dict:
        return self.series[0].covariate_sizes

    @property
    def missing_report(self) -> dict:
        """The per-series missing-value reports summed over the panel."""
        report = {"policy": self.series[0].missing_report["policy"]}
        for key in ("missing_values", "missing_timestamps_added", "interpolated_values", "masked_windows"):
            report[key] = int(sum(s.missing_report[key] for s in self.series))
        report["series_with_missing"] = [i for i, s in zip(self.ids, self.series) if s.missing_report["missing_values"]]
        return report


def _concat(parts: list[Windows]) -> Windows:
    def stack(name):
        arrays = [getattr(w, name) for w in parts]
        return None if arrays[0] is None else np.concatenate(arrays)

    return Windows(stack("x"), stack("y"), stack("origins"), stack("past"), stack("future"))


def pool(parts: list[Windows]) -> tuple[Windows, np.ndarray]:
    """The windows of every series in one `Windows`, and the series index of each window."""
    index = np.concatenate([np.full(len(w), i, dtype=int) for i, w in enumerate(parts)])
    return _concat(parts), index


@dataclasses.dataclass
class PanelSplits:
    """Per-series `Splits` and their windows pooled for the one global model."""

    parts: list[Splits]  # one per series, scaled with that series' training rows
    train: Windows
    val: Windows
    test: Windows
    train_series: np.ndarray  # [n_train] index into Panel.ids of each pooled window
    val_series: np.ndarray
    test_series: np.ndarray
    masked_windows: int
    input_length: int
    horizon: int

    def scoring(self, split: str) -> "PanelSplits":
        """These splits with `test` replaced by `split` ("test" or "validation"): what evaluation scores."""
        if split == "validation":
            return dataclasses.replace(self, test=self.val, test_series=self.val_series)
        return self


def panel_from_frame(frame: pd.DataFrame, cfg: DataConfig, name: str = "panel") -> Panel:
    """Checks a long-format table and returns one univariate `Series` per id.

    Errors name the series, the file row and the fix: a missing id/date/value column, rows without
    an id, duplicate (id, date) rows, a series out of time order, irregular or mixed frequencies.
    """
    id_column = id_column_name(cfg)
    if id_column not in frame.columns:
        raise DataError(f"{name}: id column {id_column!r} not found; columns are {list(frame.columns)} (set "
                        f"data.id_column to the series-id column, or leave it empty for a wide file)")
    rest = [c for c in frame.columns if c != id_column]
    date_column = cfg.date_column or ("date" if "date" in rest else (str(rest[0]) if rest else ""))
    if date_column not in rest:
        raise DataError(f"{name}: date column {date_column!r} not found; columns are {list(frame.columns)} "
                        f"(set data.date_column)")
    covariates = list(cfg.past_covariates) + list(cfg.future_covariates)
    unknown = [c for c in covariates if c not in rest]
    if unknown:
        raise DataError(f"{name}: covariate column(s) {unknown} not found; columns are {list(frame.columns)}")
    candidates = [c for c in rest if c != date_column and c not in covariates]
    target = cfg.target or ("value" if "value" in candidates else (candidates[0] if len(candidates) == 1 else ""))
    if not target:
        raise DataError(f"{name}: cannot tell which of {candidates} is the value column; name it with "
                        f"--set data.target=COLUMN")
    if target not in candidates:
        raise DataError(f"{name}: value column {target!r} (data.target) not found among {candidates}")
    if frame[id_column].isna().any():
        row = int(np.flatnonzero(frame[id_column].isna().to_numpy())[0])
        raise DataError(f"{name}: row {row} has no series id in column {id_column!r}; fill it or drop such rows")
    column = frame[date_column]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_datetime64_any_dtype(column):
        raise DataError(f"{name}: column {date_column!r} holds numbers ({column.iloc[0]!r}, ...), not dates; name "
                        f"the date column with --set data.date_column=NAME")
    timestamps = pd.to_datetime(column, errors="coerce")
    if timestamps.isna().any():
        row = int(np.flatnonzero(timestamps.isna().to_numpy())[0])
        raise DataError(f"{name}: unparseable timestamp {column.iloc[row]!r} in column {date_column!r} at row {row}")
    ids = frame[id_column].astype(str).to_numpy()
    keys = pd.DataFrame({"id": ids, "date": timestamps.to_numpy()})
    repeated = keys.duplicated(keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero(((keys["id"] == ids[row]) & (keys["date"] == keys["date"].iloc[row])).to_numpy())[0])
        raise DataError(f"{name}: series {ids[row]!r} has two rows for {keys['date'].iloc[row]} (rows {first} and "
                        f"{row}); keep one row per (id, date): drop or aggregate the duplicates")

    order = list(dict.fromkeys(ids))  # ids in the order they first appear
    rows_of = pd.Series(ids).groupby(ids, sort=False).indices  # {id: file rows, ascending}
    series_cfg = dataclasses.replace(cfg, id_column="", source="csv", path="", columns=(target,), target=target,
                                     features="S", date_column=date_column)
    series: list[Series] = []
    for series_id in order:
        rows = rows_of[series_id]
        times = timestamps.to_numpy()[rows]
        back = np.flatnonzero(np.diff(times) <= np.timedelta64(0))
        if len(back):
            before, after = rows[back[0]], rows[back[0] + 1]
            raise DataError(f"{name}: series {series_id!r} is not in time order: row {after} ({timestamps.iloc[after]}) "
                            f"comes after row {before} ({timestamps.iloc[before]}); sort the file by id and date")
        table = frame.iloc[rows][[date_column, target, *covariates]].reset_index(drop=True)
        one = series_from_frame(table, series_cfg, f"{name} series {series_id!r}")
        if one.frequency == "irregular":
            raise DataError(f"{name} series {series_id!r}: timestamps have no regular step; one model over many "
                            f"series needs one frequency: set data.frequency (e.g. h, D) to put them on a grid")
        series.append(one)
    for series_id, one in zip(order, series):
        if one.frequency != series[0].frequency:
            raise DataError(f"{name}: series {series_id!r} has frequency {one.frequency} but series {order[0]!r} has "
                            f"{series[0].frequency}; one global model needs one frequency: resample the file or set "
                            f"data.frequency")
    return Panel(name=name, id_column=id_column, date_column=date_column, target=target, ids=order, series=series,
                 frequency=series[0].frequency, seasonal_period=series[0].seasonal_period)


def load_panel(cfg: DataConfig) -> Panel:
    """Reads the configured long-format source (a CSV or the generated panel) and checks every series."""
    frame, name = read_frame(cfg)
    if frame.empty:
        raise DataError(f"{name}: the file has no rows")
    return panel_from_frame(frame, cfg, name)


def make_panel_splits(panel: Panel, cfg: DataConfig) -> PanelSplits:
    """Splits and scales every series on its own, then pools the windows (`data.max_train_windows` over the pool)."""
    whole = dataclasses.replace(cfg, max_train_windows=0)
    parts = []
    for series in panel.series:
        try:
            parts.append(make_splits(series, whole))
        except DataError as err:
            raise DataError(f"{err}, or drop this series from the file") from None
    train, train_series = pool([p.train for p in parts])
    val, val_series = pool([p.val for p in parts])
    test, test_series = pool([p.test for p in parts])
    if cfg.max_train_windows and len(train) > cfg.max_train_windows:
        pick = np.linspace(0, len(train) - 1, cfg.max_train_windows).round().astype(int)
        train, train_series = train.subset(pick), train_series[pick]
    return PanelSplits(parts, train, val, test, train_series, val_series, test_series,
                       int(sum(p.masked_windows for p in parts)), cfg.input_length, cfg.horizon)
