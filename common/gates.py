"""Gate inspection: re-run a trained LSTM/GRU layer step by step in NumPy and plot its gates.

    python -m common.gates --run-dir runs/speech --input clip.wav
    python -m common.gates --run-dir runs/sentiment --input "a gripping, funny film" --layer backward_lstm_0
    python -m common.gates --run-dir runs/forecast --input recent.csv --out gates.png
    python -m common.gates --run-dir runs/experiments/models/adding_T100_lstm_clip1 \
        --input runs/experiments/models/adding_T100_lstm_clip1/sample_input.npy

Works on any run dir (config.json + model.keras) whose model holds a `keras.layers.LSTM`,
`keras.layers.GRU` or `keras.layers.RNN(common.cells.NoForgetLSTMCell)`, at any depth
(inside `common.layers.RecurrentStack`, `Bidirectional`, nested models). Layers are named by
their path, e.g. `recurrent_stack/bidirectional_0/forward_lstm_0`; `--layer` takes the path
or a unique last part, and `--list` prints them.

How: the model runs once on the input while the chosen layer's `call` records what reaches
it (sequence, mask, initial state) and what it returns. The layer's own weights then run
step by step in NumPy (float64): for LSTM the input/forget/output gates, candidate, cell
and hidden state; for GRU the update/reset gates, candidate and hidden state, with Keras'
`reset_after` convention. The re-run must equal the layer's output (atol 1e-5) or the
command fails; the PNG shows every quantity as a [units x time] heatmap.

Input adapters (`--input`), all generic, chosen by file suffix:
- `.npy`: an array for the model's single input, with or without the batch axis.
- `.npz`: one array per model input, keyed by input name (or `arr_0` for a single input).
- `.wav/.flac/.ogg`: mono float audio in [-1, 1] for models that take raw audio
  (`[batch, samples]` or `[batch, samples, 1]`); resampled to a `sample_rate` found in
  config.json if there is one; zero-padded/trimmed when the input length is fixed.
- `.csv`: numeric columns (`--columns a,b` to choose) as `[1, rows, columns]`; when the
  model's time length is fixed, the last that many rows (the most recent window).
- `.txt`, or any value that is not an existing file: text for models that take raw strings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

ATOL = 1e-5
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class InspectError(ValueError):
    """A user-facing problem: no recurrent layer, unknown layer name, unusable input."""


# ---------------------------------------------------------------- finding layers


def _kind(layer: keras.layers.Layer) -> str | None:
    from common.cells import NoForgetLSTMCell

    if isinstance(layer, keras.layers.LSTM):
        return "lstm"
    if isinstance(layer, keras.layers.GRU):
        return "gru"
    if isinstance(layer, keras.layers.RNN) and isinstance(getattr(layer, "cell", None), NoForgetLSTMCell):
        return "lstm_no_forget"
    return None


def find_recurrent_layers(model: keras.layers.Layer) -> dict[str, keras.layers.Layer]:
    """Every inspectable recurrent layer inside `model`, keyed by its path of layer names."""
    found: dict[str, keras.layers.Layer] = {}

    def walk(layer, prefix):
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            path = f"{prefix}/{sub.name}" if prefix else sub.name
            if _kind(sub):
                found[path] = sub
            else:
                walk(sub, path)

    walk(model, "")
    return found


def select_layer(model: keras.layers.Layer, name: str | None = None) -> tuple[str, keras.layers.Layer]:
    """The layer named by path or unique last path part; the first one when `name` is None."""
    layers = find_recurrent_layers(model)
    if not layers:
        raise InspectError("the model has no LSTM/GRU layer to inspect (looked inside every nested layer)")
    if name is None:
        return next(iter(layers.items()))
    if name in layers:
        return name, layers[name]
    matches = [path for path in layers if path.split("/")[-1] == name or path.endswith("/" + name)]
    if len(matches) == 1:
        return matches[0], layers[matches[0]]
    hint = "ambiguous, matches " + ", ".join(matches) if matches else "not found"
    raise InspectError(f"--layer {name!r} is {hint}; recurrent layers: {', '.join(layers)}")


# ---------------------------------------------------------------- capturing what reaches the layer


@dataclasses.dataclass
class LayerIO:
    """What one call of a recurrent layer received and returned (numpy)."""

    sequences: np.ndarray  # [batch, time, features]
    mask: np.ndarray | None  # [batch, time] bool
    initial_state: list[np.ndarray] | None
    output: np.ndarray  # [batch, time, units] or [batch, units]
    states: list[np.ndarray]  # final states when the layer returns them, else []


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def capture_layer_io(model: keras.Model, layer: keras.layers.Layer, inputs: Any) -> LayerIO:
    """Runs `model(inputs)` once and records the first call of `layer` (works at any nesting depth)."""
    original = layer.call
    record: dict[str, Any] = {}

    def recording_call(sequences, initial_state=None, mask=None, training=False):
        result = original(sequences, initial_state=initial_state, mask=mask, training=training)
        if not record:
            outputs = list(result) if isinstance(result, (list, tuple)) else [result]
            record.update(
                sequences=_numpy(sequences),
                mask=None if mask is None else _numpy(mask).astype(bool),
                initial_state=None if initial_state is None else [_numpy(s) for s in initial_state],
                output=_numpy(outputs[0]),
                states=[_numpy(s) for s in outputs[1:]],
            )
        return result

    layer.call = recording_call  # An instance attribute shadows the class method for this one run.
    try:
        model(inputs, training=False)
    finally:
        del layer.call
    if not record:
        raise InspectError(f"layer {layer.name!r} was not called when running the model on this input")
    return LayerIO(**record)


# ---------------------------------------------------------------- the NumPy re-run


def _activation(fn) -> Any:
    name = keras.activations.serialize(fn)
    name = name if isinstance(name, str) else name.get("config", {}).get("name", str(name))
    table = {
        "tanh": np.tanh,
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
        "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
        "relu": lambda x: np.maximum(x, 0.0),
        "linear": lambda x: x,
    }
    if name not in table:
        raise InspectError(f"activation {name!r} is not supported by the NumPy re-run; supported: {', '.join(table)}")
    return table[name]


def _weights(cell) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    kernel = _numpy(cell.kernel).astype("float64")
    recurrent = _numpy(cell.recurrent_kernel).astype("float64")
    bias = _numpy(cell.bias).astype("float64") if getattr(cell, "use_bias", True) and cell.bias is not None else None
    return kernel, recurrent, bias


def rerun_layer(layer: keras.layers.Layer, io: LayerIO) -> dict[str, np.ndarray]:
    """Recomputes `layer` on the recorded inputs, step by step; returns gates and the layer-shaped output.

    Every returned trace is `[batch, time, units]` in the layer's processing order (reversed
    for `go_backwards`); `"output"` is shaped like what the layer returned.
    """
    kind = _kind(layer)
    cell = layer.cell
    units = int(cell.units)
    act, rec_act = _activation(cell.activation), _activation(cell.recurrent_activation)
    kernel, recurrent, bias = _weights(cell)
    x = io.sequences.astype("float64")
    batch, steps = x.shape[0], x.shape[1]
    mask = io.mask if io.mask is not None else np.ones((batch, steps), dtype=bool)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if layer.go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    n_states = 2 if kind != "gru" else 1
    states = (
        [s.astype("float64") for s in io.initial_state]
        if io.initial_state
        else [np.zeros((batch, units)) for _ in range(n_states)]
    )
    h = states[0]
    c = states[1] if n_states == 2 else None
    previous_output = np.zeros((batch, units))
    names = {
        "lstm": ("input_gate", "forget_gate", "output_gate", "candidate", "cell_state", "hidden_state"),
        "lstm_no_forget": ("input_gate", "output_gate", "candidate", "cell_state", "hidden_state"),
        "gru": ("update_gate", "reset_gate", "candidate", "hidden_state"),
    }[kind]
    traces = {name: np.zeros((batch, steps, units)) for name in names}
    outputs = np.zeros((batch, steps, units))
    for t in range(steps):
        xt = x[:, t]  # [batch, features]
        if kind in ("lstm", "lstm_no_forget"):
            z = xt @ kernel + h @ recurrent + (bias if bias is not None else 0.0)
            if kind == "lstm":
                z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
                f = rec_act(z_f)
            else:
                z_i, z_g, z_o = np.split(z, 3, axis=-1)
                f = np.ones_like(z_i)  # The 1997 cell: the carousel keeps c_prev untouched.
            i, g, o = rec_act(z_i), act(z_g), rec_act(z_o)
            c_new = f * c + i * g
            h_new = o * act(c_new)
            values = {"input_gate": i, "forget_gate": f, "output_gate": o, "candidate": g,
                      "cell_state": c_new, "hidden_state": h_new}
        else:
            if cell.reset_after:
                input_bias, recurrent_bias = (bias[0], bias[1]) if bias is not None else (0.0, 0.0)
                x_z, x_r, x_h = np.split(xt @ kernel + input_bias, 3, axis=-1)
                r_z, r_r, r_h = np.split(h @ recurrent + recurrent_bias, 3, axis=-1)
                z, r = rec_act(x_z + r_z), rec_act(x_r + r_r)
                g = act(x_h + r * r_h)  # reset_after: the reset gate scales U_h h + b_h (cuDNN convention)
            else:
                x_z, x_r, x_h = np.split(xt @ kernel + (bias if bias is not None else 0.0), 3, axis=-1)
                r_z, r_r = np.split(h @ recurrent[:, : 2 * units], 2, axis=-1)
                z, r = rec_act(x_z + r_z), rec_act(x_r + r_r)
                g = act(x_h + (r * h) @ recurrent[:, 2 * units:])
            h_new = z * h + (1.0 - z) * g
            c_new = None
            values = {"update_gate": z, "reset_gate": r, "candidate": g, "hidden_state": h_new}
        keep = mask[:, t][:, None]
        # Masked steps carry the previous state; their output is zero or the previous output.
        h = np.where(keep, h_new, h)
        if c is not None:
            c = np.where(keep, c_new, c)
        masked_output = np.zeros_like(h) if getattr(layer, "zero_output_for_mask", False) else previous_output
        out_t = np.where(keep, h_new, masked_output)
        previous_output = out_t
        outputs[:, t] = out_t
        for name in names:
            traces[name][:, t] = values[name]
    traces["output"] = outputs if layer.return_sequences else outputs[:, -1]
    traces["final_states"] = [h] if c is None else [h, c]
    return traces


@dataclasses.dataclass
class InspectResult:
    path: str
    kind: str
    traces: dict[str, Any]
    max_abs_error: float
    go_backwards: bool


def inspect_layer(model: keras.Model, inputs: Any, layer_name: str | None = None) -> InspectResult:
    """Captures, re-runs and compares one recurrent layer; raises InspectError if the re-run differs."""
    path, layer = select_layer(model, layer_name)
    io = capture_layer_io(model, layer, inputs)
    traces = rerun_layer(layer, io)
    errors = [np.max(np.abs(traces["output"] - io.output))]
    for mine, theirs in zip(traces["final_states"], io.states):
        errors.append(np.max(np.abs(mine - theirs)))
    error = float(max(errors))
    if not error <= ATOL:
        raise InspectError(f"the step-by-step re-run of {path} differs from the layer by {error:.2e} (> {ATOL:g})")
    return InspectResult(path, _kind(layer), traces, error, bool(layer.go_backwards))


# ---------------------------------------------------------------- input adapters


def _find_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj and isinstance(obj[key], (int, float)):
            return obj[key]
        for value in obj.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def _fit_length(array: np.ndarray, length: int | None, axis: int = 0, keep_end: bool = False) -> np.ndarray:
    """Zero-pads or trims `axis` to `length` (None = leave as is)."""
    if length is None or array.shape[axis] == length:
        return array
    if array.shape[axis] > length:
        index = [slice(None)] * array.ndim
        index[axis] = slice(array.shape[axis] - length, None) if keep_end else slice(0, length)
        return array[tuple(index)]
    pad = [(0, 0)] * array.ndim
    pad[axis] = (0, length - array.shape[axis])
    return np.pad(array, pad)


def load_input(value: str, model: keras.Model, run_dir: Path | None = None, columns: str | None = None) -> Any:
    """Turns `--input` into what `model` takes (see the module docstring for the rules)."""
    specs = model.inputs
    path = Path(value)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if not path.is_file():
            raise InspectError(f"input file {path} not found")
        archive = np.load(path)
        names = [spec.name for spec in specs]
        if len(specs) == 1 and "arr_0" in archive.files:
            return np.asarray(archive["arr_0"])
        missing = [n for n in names if n not in archive.files]
        if missing:
            raise InspectError(f"{path} lacks arrays for model inputs {missing}; it has {archive.files}")
        return {n: archive[n] for n in names}
    if len(specs) != 1:
        raise InspectError(
            f"the model takes {len(specs)} inputs ({', '.join(s.name for s in specs)}); pass a .npz with one array per input"
        )
    spec = specs[0]
    shape, dtype = tuple(spec.shape), str(spec.dtype)
    if suffix == ".npy":
        if not path.is_file():
            raise InspectError(f"input file {path} not found")
        array = np.load(path)
        return array[None] if array.ndim == len(shape) - 1 else array
    if suffix in AUDIO_SUFFIXES:
        import soundfile

        if not path.is_file():
            raise InspectError(f"audio file {path} not found")
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)  # mono
        config = json.loads((run_dir / "config.json").read_text()) if run_dir and (run_dir / "config.json").is_file() else {}
        target_rate = _find_key(config, "sample_rate")
        if target_rate and int(target_rate) != rate:
            import librosa

            audio = librosa.resample(audio, orig_sr=rate, target_sr=int(target_rate)).astype("float32")
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] != 1) or "float" not in dtype:
            raise InspectError(f"the model input {shape} ({dtype}) is not raw audio; pass a .npy of its input instead")
        audio = _fit_length(audio, shape[1])
        return audio[None] if len(shape) == 2 else audio[None, :, None]
    if suffix == ".csv":
        import pandas

        if not path.is_file():
            raise InspectError(f"CSV file {path} not found")
        frame = pandas.read_csv(path)
        if columns:
            wanted = [c.strip() for c in columns.split(",")]
            unknown = [c for c in wanted if c not in frame.columns]
            if unknown:
                raise InspectError(f"--columns {unknown} not in {path}; it has {list(frame.columns)}")
            frame = frame[wanted]
        numeric = frame.select_dtypes("number")
        if len(shape) != 3:
            raise InspectError(f"the model input {shape} is not [batch, time, features]; pass a .npy of its input instead")
        if shape[-1] is not None and numeric.shape[1] != shape[-1]:
            raise InspectError(
                f"{path} has {numeric.shape[1]} numeric columns {list(numeric.columns)} but the model takes "
                f"{shape[-1]} features; choose them with --columns a,b,..."
            )
        array = numeric.to_numpy(dtype="float32")
        if shape[1] is not None and len(array) < shape[1]:
            raise InspectError(f"{path} has {len(array)} rows but the model needs a window of {shape[1]}")
        return _fit_length(array, shape[1], keep_end=True)[None]
    # Text: a .txt file or the string itself.
    if suffix == ".txt":
        if not path.is_file():
            raise InspectError(f"text file {path} not found")
        text = path.read_text().strip()
    else:
        text = value
    if "string" not in dtype and dtype != "object":
        raise InspectError(
            f"{value!r} is not an existing .npy/.npz/.wav/.csv file, and the model takes {dtype} input of shape {shape}, "
            "not raw text; pass a file path"
        )
    return np.array([text]).reshape((1,) + (1,) * (len(shape) - 1)) if len(shape) > 1 else np.array([text])


# ---------------------------------------------------------------- plotting


def plot_gates(result: InspectResult, path: str | Path, example: int = 0, title: str = "") -> Path:
    """One `[units x time]` heatmap per gate/state, for one example, in input time order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in result.traces if k not in ("output", "final_states")]
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.9 * len(names) + 0.6), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], names):
        trace = result.traces[name][example]  # [time, units]
        if result.go_backwards:
            trace = trace[::-1]  # Shown in input time order.
        gate = name.endswith("_gate")
        limit = float(np.max(np.abs(trace))) or 1.0
        image = ax.imshow(trace.T, aspect="auto", interpolation="nearest", origin="lower",
                          cmap="viridis" if gate else "RdBu_r",
                          vmin=0.0 if gate else -limit, vmax=1.0 if gate else limit)
        ax.set_ylabel(f"{name.replace('_', ' ')}\nunit", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    axes[-1, 0].set_xlabel("time step" + (" (backward layer, shown in input order)" if result.go_backwards else ""))
    fig.suptitle(title or f"{result.path} ({result.kind}), example {example}; re-run max |error| = {result.max_abs_error:.1e}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


# ---------------------------------------------------------------- CLI


def import_custom_layer_modules(model_path: Path) -> list[str]:
    """Imports the project modules that define the custom layers a `.keras` file names.

    A run dir of any app may hold layers registered in that app (e.g. `apps.speech.features`);
    Keras records each class's module in the archive's config, so importing those modules
    first lets one generic loader open every run dir. Only modules of this project are imported.
    """
    import importlib
    import zipfile

    with zipfile.ZipFile(model_path) as archive:
        config = json.loads(archive.read("config.json"))
    modules: set[str] = set()

    def walk(obj):
        if isinstance(obj, dict):
            module = obj.get("module")
            if isinstance(module, str) and module.split(".")[0] in ("apps", "common", "bench"):
                modules.add(module)
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk(config)
    for module in sorted(modules):
        importlib.import_module(module)
    return sorted(modules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot LSTM/GRU gate activations of a trained run, re-run step by step in NumPy.")
    parser.add_argument("--run-dir", required=True, help="a finished run dir (config.json + model.keras)")
    parser.add_argument("--input", help="a .npy/.npz array, .wav/.flac/.ogg audio, .csv table, .txt file or a text string")
    parser.add_argument("--layer", default=None, help="recurrent layer path or last path part (default: the first one)")
    parser.add_argument("--out", default=None, help="PNG path (default: gates_<layer>.png in the current folder)")
    parser.add_argument("--example", type=int, default=0, help="which batch element to plot")
    parser.add_argument("--columns", default=None, help="CSV only: comma-separated columns to feed, in order")
    parser.add_argument("--list", action="store_true", help="print the recurrent layers and exit")
    args = parser.parse_args(argv)
    from common.pipeline import load_model
    from common.rundir import RunDirError, open_run_dir

    try:
        run_dir = open_run_dir(args.run_dir)
        import_custom_layer_modules(run_dir / "model.keras")
        try:
            model = load_model(run_dir)
        except TypeError as err:
            raise InspectError(f"cannot load {run_dir / 'model.keras'}: {str(err).splitlines()[0]}") from err
        if args.list:
            for path, layer in find_recurrent_layers(model).items():
                print(f"{path}  ({_kind(layer)}, {layer.cell.units} units{', backward' if layer.go_backwards else ''})")
            return 0
        if not args.input:
            raise InspectError("--input is required (a .npy/.wav/.csv/.txt file or a text string); see --help")
        inputs = load_input(args.input, model, run_dir, args.columns)
        result = inspect_layer(model, inputs, args.layer)
        batch = result.traces["hidden_state"].shape[0]
        if not 0 <= args.example < batch:
            raise InspectError(f"--example {args.example} is out of range for a batch of {batch}")
        out = Path(args.out) if args.out else Path(f"gates_{result.path.replace('/', '__')}.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        plot_gates(result, out, example=args.example)
        np.savez(out.with_suffix(".npz"), **{k: v for k, v in result.traces.items() if k != "final_states"})
    except (InspectError, RunDirError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    steps = result.traces["hidden_state"].shape[1]
    print(f"layer {result.path} ({result.kind}): {steps} steps re-run in NumPy, max |error| vs the layer = "
          f"{result.max_abs_error:.2e} (<= {ATOL:g})")
    print(f"heatmap: {out}\ntraces:  {out.with_suffix('.npz')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
