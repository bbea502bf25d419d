"""The one app pipeline: what every app does the same way, written once.

An app is a folder of declarations. Its `app.py` holds an `App` subclass that says what differs
(how data is prepared, the model, what it saves beside the model, how it evaluates, exports
and predicts); this module does the rest the same way for every app:

- `train(app, cfg, run_dir)`: validate the config (all `--set` overrides applied, before any data
  is loaded), check the run dir, seed, precision, distribution, prepare data, build + compile with
  every `TrainConfig` field, fit (resumable), plot `training_curves.png`, evaluate, write
  `metrics.json`, publish the run dir, print where everything is. Returns a `Run`.
- `load_run(run_dir)`: a `Run` (app, config, model, preprocessing state), checked against each
  other when opened. `run.predict(...)`, `run.evaluate(...)`, `run.export(...)` work on it.
- Evaluations go to `<run-dir>/eval/<name>/metrics.json` (+ plots), exports to `<run-dir>/export/`.

    from common.pipeline import load_run, train
    run = train("speech", "tiny", "runs/speech-tiny", overrides=["train.epochs=2"])
    run = load_run("runs/speech-tiny")
    run.predict(waveforms)                  # app-specific inputs: arrays, strings, a DataFrame
    run.evaluate(split="test")
    run.export(formats=("keras", "onnx"))
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from common.config import apply_overrides, describe, from_dict, load_config, resolve_config, to_dict
from common.errors import ConfigError, RunDirError, UsageError
from common.rundir import RunDir, check_writable, open_run_dir, read_json, read_manifest, write_json

CURVES = "training_curves.png"


@dataclasses.dataclass
class Prepared:
    """What `App.prepare` returns: everything training needs, made before the run dir opens.

    Attributes:
        train, validation: anything `model.fit` takes (a PyDataset, a tf.data pipeline, `(x, y)`).
        steps_per_epoch: optimizer steps per epoch (sizes the learning-rate schedule).
        summary: split sizes and provenance, printed and written to `data.json`.
        data: the app's own object (splits, tokenizers, scaler...) that its other hooks use.
    """

    train: Any
    validation: Any
    steps_per_epoch: int
    summary: dict
    data: Any = None


@dataclasses.dataclass
class Built:
    """What `App.build` returns: the model to keep, the one to train (often the same) and how to compile it.

    Attributes:
        model: the model saved as model.keras and used for inference.
        compile: keyword arguments for `compile` besides the optimizer (loss, metrics...).
        train_model: the model fit trains when it differs (it must share `model`'s layers).
        metric_callbacks: callbacks that add metrics to the epoch logs before they are used (val_bleu).
        fit_kwargs: more arguments for `common.training.fit` (e.g. `shuffle=False`; `has_validation=True`
            when a metric callback is the validation).
    """

    model: Any
    compile: dict
    train_model: Any = None
    metric_callbacks: Sequence[Any] = ()
    fit_kwargs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Job:
    """One training in progress: what the App hooks see."""

    app: "App"
    cfg: Any
    dist: Any
    prepared: Prepared | None = None
    run: RunDir | None = None
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def path(self) -> Path:
        return self.run.path


class App:
    """An app's declarations. Subclasses set the attributes and override the hooks they need."""

    name = ""  # registry name, recorded in every run dir it writes
    package = ""  # e.g. "apps.speech": its train/evaluate/predict/export modules
    title = ""  # one line for --help and the closing summary
    config_class: type = object
    presets: Mapping[str, Any] = {}
    preset_help: Mapping[str, str] = {}
    monitor: tuple[str, str] = ("val_loss", "min")  # what picks the best epoch
    splits: tuple[str, ...] = ("train", "validation", "test")  # what evaluate --split accepts
    default_split = "test"
    # evaluate --data scores all of the given data, so a --split other than the default is refused (speech leaves
    # it False: its --split picks within the data)
    data_is_one_split = False
    export_formats: tuple[str, ...] = ("keras", "saved_model", "tflite", "onnx")
    default_export_formats: tuple[str, ...] = ("keras", "saved_model", "tflite", "onnx")
    predict_command = "predict"  # the module name users know (translate, forecast...)
    fixed_settings: tuple[str, ...] = ()  # data.* keys the trained model was built for (evaluate --set refuses them)

    # ------------------------------------------------------------------ configuration
    def config(self, preset: str = "default", overrides: Sequence[str] = ()) -> Any:
        """A preset with `key=value` overrides applied, validated."""
        cfg = resolve_config(self.presets, preset, overrides)
        self.validate(cfg)
        return cfg

    def validate(self, cfg) -> None:
        """Cross-field rules, after every override and before any data is loaded: raise ConfigError.
        The base checks the training fields every app shares."""
        train = getattr(cfg, "train", None)
        if train is not None:
            check_train_config(train)

    # ------------------------------------------------------------------ training
    def prepare(self, job: Job) -> Prepared:
        raise NotImplementedError

    def build(self, job: Job) -> Built:
        raise NotImplementedError

    def save_state(self, job: Job) -> None:
        """Writes the preprocessing state (labels, vocabulary, tokenizers, scaler) into `job.path`."""

    def fit(self, job: Job):
        """Builds, compiles and fits once; returns (model, history). Apps with several fits override it."""
        from common.training import fit, make_optimizer

        with job.dist.scope():
            built = self.build(job)
            trained = built.train_model if built.train_model is not None else built.model
            compile_model(trained, make_optimizer(job.cfg.train, job.prepared.steps_per_epoch, job.dist),
                          job.cfg.train, built.compile)
        monitor, mode = self.monitor_for(job)
        return fit(trained, job.prepared.train, job.prepared.validation, job.cfg.train, job.run, monitor=monitor,
                   mode=mode, dist=job.dist, keep=built.model, metric_callbacks=built.metric_callbacks,
                   **built.fit_kwargs)

    def monitor_for(self, job: Job) -> tuple[str, str]:
        monitor, mode = self.monitor
        if job.prepared.validation is None and monitor.startswith("val_"):
            return monitor[4:], mode
        return monitor, mode

    def after_training(self, job: Job, model) -> dict:
        """Scores the trained model (plots into `job.path`); returns the metrics for metrics.json."""
        return {}

    def summary(self, metrics: dict) -> dict:
        """The headline numbers printed when training ends."""
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def summary_files(self) -> Sequence[str]:
        return ("metrics.json", CURVES, "model.keras", "history.json")

    # ------------------------------------------------------------------ a finished run
    def load_state(self, run: "Run") -> Any:
        """The preprocessing state a run saved (labels, vocabulary...), checked against the model."""
        return None

    def evaluate(self, run: "Run", split: str, data: str | None, out: Path, options: dict) -> dict:
        raise UsageError(f"{self.name} has no evaluate command")

    def resolve_split(self, run: "Run", split: str | None) -> str:
        """The split evaluate scores when none is named."""
        return split or self.default_split

    def evaluation_name(self, split: str, data: str | None, options: dict) -> str:
        if not data:
            return split
        name = Path(data).name
        for suffix in (".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip", ".csv", ".tsv", ".txt"):
            name = name[: -len(suffix)] if name.endswith(suffix) else name
        return f"{name}_{split}"

    def predict(self, run: "Run", inputs, **options):
        raise UsageError(f"{self.name} has no predict command")

    def export(self, run: "Run", out: Path, formats: Sequence[str], num_examples: int, options: dict) -> dict:
        raise UsageError(f"{self.name} has no export command")

    # ------------------------------------------------------------------ command-line hooks
    def add_evaluate_arguments(self, parser) -> None: ...

    def add_predict_arguments(self, parser) -> None: ...

    def add_export_arguments(self, parser) -> None: ...

    def run_predict_command(self, run: "Run", args) -> int:
        raise UsageError(f"{self.name} has no predict command")

    def print_evaluation(self, metrics: dict, out: Path) -> None:
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}, indent=2))

    def print_export(self, report: dict, out: Path) -> None:
        for fmt, info in report.get("formats", {}).items():
            diff = info.get("max_abs_diff")
            print(f"  {fmt}: {info['path']}" + ("" if diff is None else f" (max |diff| vs Keras {diff:.2g})"))


TRAIN_BACKENDS = {"mirrored": "tensorflow", "multi_worker": "tensorflow", "data_parallel": "jax"}


def check_train_config(train) -> None:
    """Rules on TrainConfig that involve more than one field or the environment."""
    import keras

    backend = TRAIN_BACKENDS.get(train.distribution)
    if backend and keras.backend.backend() != backend:
        fix = "KERAS_BACKEND=jax with train.distribution=data_parallel" if backend == "jax" else \
            "KERAS_BACKEND=tensorflow (the default) with train.distribution=mirrored or multi_worker"
        raise ConfigError(f"train.distribution={train.distribution} needs the {backend} backend, but Keras runs on "
                          f"{keras.backend.backend()}; use {fix}")
    if train.distribution == "multi_worker":
        import os

        if "TF_CONFIG" not in os.environ:
            raise ConfigError("train.distribution=multi_worker needs TF_CONFIG describing the cluster (README, "
                              "Scaling out)")
    if train.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("train.tensorboard=true needs the tensorboard package (make setup installs it)") from None


def compile_model(model, optimizer, train, compile_kwargs: dict) -> None:
    """`model.compile` with the optimizer and every TrainConfig field that compile takes."""
    model.compile(optimizer=optimizer, steps_per_execution=train.steps_per_execution, **compile_kwargs)


@dataclasses.dataclass
class Ensemble:
    """What `fit_ensemble` returns: the averaged model, its members (nested models) and their histories."""

    model: Any
    members: list
    histories: list

    @property
    def history(self) -> dict:
        return {"members": self.histories, "loss": self.histories[0].get("loss", [])}


def fit_ensemble(job: Job, size: int, fit_one: Callable[[Job, int], tuple], combine: Callable[[list], Any],
                 compile: bool = True) -> Ensemble:
    """Trains `size` members (seeds seed, seed+1, ...) and averages them into one model with `combine`.

    Member k trains through `fit_one(member_job, k)` in its own `members/<k+1>/` folder (a SubRun:
    checkpoint, early stopping and backup of its own) with `train.seed` set to its seed, so an
    interrupted ensemble resumes where it stopped: finished members are loaded, not retrained, and a
    run stopped after averaging continues from the average. The ensemble's model.keras holds every
    member's weights, so the members' own copies are deleted once it is saved (`compile=False` loads
    members and ensemble without their training state).
    """
    import keras

    from common.distribute import setup_distribution
    from common.rundir import SubRun
    from common.training import set_seed

    run = job.run

    def nested(model) -> list:
        return [layer for layer in model.layers if isinstance(layer, keras.Model)]

    if (run.path / "model.keras").is_file():  # --resume after every member was trained and averaged
        print(f"training had finished: continuing from {run.path / 'model.keras'}")
        model = keras.models.load_model(str(run.path / "model.keras"), compile=compile)
        return Ensemble(model, nested(model), read_json(run.path / "history.json")["members"])
    members, histories = [], []
    for k in range(size):
        seed = job.cfg.train.seed + k
        member_run = SubRun(run, f"members/{k + 1}")
        print(f"== ensemble member {k + 1}/{size} (seed {seed}) ==", flush=True)
        if member_run.finished:
            print(f"member {k + 1} already trained; loading {member_run.path / 'model.keras'}")
            members.append(keras.models.load_model(str(member_run.path / "model.keras"), compile=compile))
            histories.append(read_json(member_run.path / "history.json"))
            continue
        dist = job.dist
        if k > 0 and dist.mode == "data_parallel":
            dist = setup_distribution(job.cfg.train)  # fit drops the JAX distribution when it ends
        set_seed(seed)
        cfg = dataclasses.replace(job.cfg, train=dataclasses.replace(job.cfg.train, seed=seed))
        model, history = fit_one(dataclasses.replace(job, cfg=cfg, run=member_run, dist=dist), k)
        members.append(model)
        histories.append(history)
    model = combine(members)
    model.save(str(run.path / "model.keras"))
    run.write_json("history.json", {"members": histories})
    for k in range(size):
        (run.path / "members" / str(k + 1) / "model.keras").unlink(missing_ok=True)
    return Ensemble(model, members, histories)


# ---------------------------------------------------------------------------- the registry

def get_app(app: "App | str") -> App:
    """The App for a name (`speech`, `sentiment`, `translation`, `forecasting`, `language_model`) or itself."""
    if isinstance(app, App):
        return app
    from apps import ALIASES, APPS

    name = ALIASES.get(app, app)
    if name not in APPS:
        raise UsageError(f"unknown app {app!r}; choose one of {', '.join(APPS)}")
    return importlib.import_module(APPS[name]).APP


# ---------------------------------------------------------------------------- train

def train(app: "App | str", cfg: Any, run_dir: str | Path, overrides: Sequence[str] = (), resume: bool = False,
          overwrite: bool = False) -> "Run | None":
    """Trains `cfg` (a config object or a preset name, `overrides` applied) into `run_dir`.

    Returns the finished `Run` (None on the non-chief workers of a multi-worker run)."""
    from common.distribute import setup_distribution
    from common.evaluation import plot_history
    from common.training import configure_precision, set_seed

    app = get_app(app)
    cfg = app.config(cfg, overrides) if isinstance(cfg, str) else apply_overrides(cfg, overrides)
    if not isinstance(cfg, app.config_class):
        raise UsageError(f"{app.name} trains a {app.config_class.__module__}.Config, got {type(cfg).__name__}")
    app.validate(cfg)
    config = to_dict(cfg)
    RunDir(run_dir, app=app.name, config=config, resume=resume, overwrite=overwrite).check()
    print("Config:\n  " + "\n  ".join(describe(cfg)), flush=True)
    set_seed(cfg.train.seed)
    configure_precision(cfg.train.precision)
    job = Job(app, cfg, setup_distribution(cfg.train))
    print(job.dist.describe())
    job.prepared = app.prepare(job)
    print(f"data: {_one_line(job.prepared.summary)} ({time.perf_counter() - job.started:.0f} s)", flush=True)
    with RunDir(run_dir, app=app.name, config=config, resume=resume, overwrite=overwrite,
                is_chief=job.dist.is_chief) as run:
        job.run = run
        run.write_json("data.json", job.prepared.summary)
        app.save_state(job)
        model, history = app.fit(job)
        if history:
            plot_history(history.get("members", history) if isinstance(history, dict) else history,
                         run.path / CURVES, title=f"{app.name} training")
        train_seconds = time.perf_counter() - job.started
        metrics = app.after_training(job, model)
        metrics.update(train_seconds=round(train_seconds, 1), num_parameters=int(model.count_params()),
                       epochs_run=_epochs_run(history, metrics))
        run.write_json("metrics.json", metrics)
    if not job.dist.is_chief:
        return None
    print_summary(f"{app.name}: {app.title}", run.final, app.summary(metrics), app.summary_files())
    return load_run(run.final, app)


def _one_line(summary: dict) -> str:
    parts = [f"{k} {v}" for k, v in summary.items() if isinstance(v, (int, float, str)) and len(str(v)) < 80]
    return ", ".join(parts)


def print_summary(title: str, run_dir: Path, metrics: dict, files: Sequence[str]) -> None:
    """The closing lines of every train command: the headline numbers and where the results are."""
    print(f"\n== {title} ==")
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    print(f"Run dir: {run_dir}")
    for name in files:
        if (run_dir / name).exists():
            print(f"  {run_dir / name}")
    print(json.dumps({"run_dir": str(run_dir)}))


# ---------------------------------------------------------------------------- a finished run

class Run:
    """A finished run dir: its app, config, model and preprocessing state, checked against each other.

    The model and the state load on first use. `predict`, `evaluate` and `export` call the app.
    """

    def __init__(self, path: Path, app: App, cfg: Any, manifest: dict | None):
        self.path, self.app, self.cfg, self.manifest = path, app, cfg, manifest or {}
        self._model = None
        self._state = None
        self._state_loaded = False

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, app={self.app.name!r})"

    @property
    def metrics(self) -> dict:
        return read_json(self.path / "metrics.json", "written when training finished")

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.path)
        return self._model

    @property
    def state(self) -> Any:
        if not self._state_loaded:
            self._state = self.app.load_state(self)
            self._state_loaded = True
        return self._state

    def with_overrides(self, overrides: Sequence[str]) -> "Run":
        """The same run reading other data (`data.*`, `eval.*`, `decode.*` fields); model and training
        fields describe what was trained and cannot change."""
        if not overrides:
            return self
        for item in overrides:
            key = item.split("=", 1)[0].strip()
            section = key.split(".", 1)[0]
            if key in self.app.fixed_settings:
                raise ConfigError(f"--set {item}: the trained model was built for {key}="
                                  f"{_get(self.cfg, key)!r}; it cannot read another value (train a new run)")
            if section in ("model", "train", "features", "tokenizer"):
                raise ConfigError(f"--set {item}: {section}.* describes the trained model and cannot change after "
                                  f"training; only data/eval/decode settings can")
        clone = Run(self.path, self.app, apply_overrides(self.cfg, overrides), self.manifest)
        clone._model, clone._state, clone._state_loaded = self._model, self._state, self._state_loaded
        return clone

    def predict(self, inputs=None, **options):
        """The app's prediction for `inputs` (waveforms or paths, texts, a DataFrame or None for forecasting's
        own data, a prompt)."""
        return self.app.predict(self, inputs, **options)

    def evaluate(self, split: str | None = None, data: str | None = None, out: str | Path | None = None,
                 overrides: Sequence[str] = (), **options) -> dict:
        return evaluate(self, split, data, out, overrides, **options)

    def export(self, out: str | Path | None = None, formats: Sequence[str] | None = None, num_examples: int = 8,
               **options) -> dict:
        return export(self, out, formats, num_examples, **options)


def _get(cfg, key: str):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _epochs_run(history: dict, metrics: dict):
    """Epochs trained: a number, or one per member for an ensemble."""
    if history and "members" in history:
        return [len(member.get("loss", [])) for member in history["members"]]
    if history and "loss" in history:
        return len(history["loss"])
    return metrics.get("epochs_run")


def load_run(run_dir: str | Path | Run, app: "App | str | None" = None) -> Run:
    """Opens a finished run dir. `app` (optional) must be the app that wrote it."""
    if isinstance(run_dir, Run):
        return run_dir
    expected = get_app(app) if app is not None else None
    path = open_run_dir(run_dir, expected.name if expected else None)
    manifest = read_manifest(path)
    if manifest is not None and manifest.get("app"):
        app_obj = get_app(manifest["app"])
    elif expected is not None:
        app_obj = expected  # a run dir of an older suite version: no manifest to say which app wrote it
    else:
        raise RunDirError(f"{path} has no run.json saying which app wrote it (an older run dir); open it with the "
                          f"app's own commands, e.g. python -m apps.speech.evaluate --run-dir {path}")
    cfg = load_config(app_obj.config_class, path / "config.json")
    run = Run(path, app_obj, cfg, manifest)
    run.state  # noqa: B018  (labels/vocabulary checked against the config and model now, not at first use)
    return run


def load_model(run_dir: str | Path):
    """The trained model of a run dir; a damaged file is a clear error, not a Keras traceback."""
    import keras

    import common.cells  # noqa: F401  (registers the serializable cells and layers)
    import common.layers  # noqa: F401
    from common.backend import enable_jax_compilation_cache

    path = Path(run_dir) / "model.keras"
    if not zipfile.is_zipfile(path):
        raise RunDirError(f"{path} is damaged (not a complete .keras archive); retrain, or restore the file")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as err:
        raise RunDirError(f"{path} is damaged ({err}); retrain, or restore the file") from None
    if bad is not None:
        raise RunDirError(f"{path} is damaged ({bad} is corrupt); retrain, or restore the file")
    enable_jax_compilation_cache()
    return keras.models.load_model(str(path), compile=False)


def check_outputs(run: Run, count: int, what: str) -> None:
    """Raises RunDirError when the model's output width does not match `count` (e.g. labels.json)."""
    width = run.model.outputs[0].shape[-1]
    if width != count and not (width == 1 and count == 2):
        raise RunDirError(f"{run.path}: the model has {width} outputs but {what} names {count}; the run dir is "
                          f"damaged or mixed with another run: retrain or restore it")


# ---------------------------------------------------------------------------- evaluate / export

OWN_DATA = "the run's own data"  # evaluate's metrics["data"] when no --data file was named


def scored_on(metrics: dict, default: str = "test") -> str:
    """What an evaluation scored, for its report: the --data file's name, else the split (`default` for the
    metrics written at train time, which name neither)."""
    data = metrics.get("data")
    return Path(data).name if data and data != OWN_DATA else metrics.get("split", default)


def evaluate(run: "Run | str | Path", split: str | None = None, data: str | None = None,
             out: str | Path | None = None, overrides: Sequence[str] = (), **options) -> dict:
    """Scores a run on one of its splits or on other data; writes `<run-dir>/eval/<name>/metrics.json`."""
    run = load_run(run).with_overrides(overrides)
    app = run.app
    split = app.resolve_split(run, split)
    if split not in app.splits:
        raise UsageError(f"unknown split {split!r}; {app.name} has {', '.join(app.splits)}")
    if data and app.data_is_one_split and split != app.resolve_split(run, None):
        raise UsageError(f"--split {split} picks one of the run's own splits; --data scores all of "
                         f"{Path(data).name}: leave --split out")
    folder = Path(out) if out else run.path / "eval" / app.evaluation_name(split, data, options)
    check_writable(folder, "the evaluation", "--out")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        metrics = app.evaluate(run, split, data, folder, options)
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)  # nothing half-written: the folder was this call's
        raise
    metrics = {"app": app.name, "run_dir": str(run.path), "split": split, "data": data or OWN_DATA,
               "overrides": list(overrides), **metrics}
    write_json(folder / "metrics.json", metrics)
    return metrics


def export(run: "Run | str | Path", out: str | Path | None = None, formats: Sequence[str] | None = None,
           num_examples: int = 8, **options) -> dict:
    """Writes the run's exports (each parity-checked against Keras) under `out` (default <run-dir>/export)."""
    import keras

    from common.errors import BackendError

    run = load_run(run)
    app = run.app
    formats = tuple(formats or app.default_export_formats)
    unknown = sorted(set(formats) - set(app.export_formats))
    if unknown:
        raise UsageError(f"unknown export format(s) {unknown}; {app.name} exports {', '.join(app.export_formats)}")
    if num_examples < 1:
        raise UsageError(f"--num-examples must be >= 1, got {num_examples}")
    if keras.backend.backend() != "tensorflow":
        raise BackendError("export runs on the TensorFlow backend: unset KERAS_BACKEND (or set it to tensorflow); "
                           "the run dir's model.keras loads there whatever backend trained it")
    folder = Path(out) if out else run.path / "export"
    check_writable(folder, "the export", "--out")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        report = app.export(run, folder, formats, num_examples, options)
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    write_json(folder / "export.json", {"app": app.name, "run_dir": str(run.path), **report})
    return report


def config_from_dict(app: "App | str", data: Mapping) -> Any:
    """A config object from a plain nested dict (e.g. one a notebook edited), checked."""
    app = get_app(app)
    cfg = from_dict(app.config_class, data)
    app.validate(cfg)
    return cfg
