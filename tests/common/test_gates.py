"""common.gates: the NumPy step-by-step re-run equals the Keras layer; CLI on a tiny run dir; input adapters."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from common.cells import NoForgetLSTMCell
from common.gates import (
    InspectError,
    find_recurrent_layers,
    inspect_layer,
    load_input,
    main,
    select_layer,
)
from common.layers import RecurrentStack
from common.rundir import RunDir
from common.training import TrainConfig, fit


def _x(batch=2, steps=6, features=3, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def _randomize(model, seed=1):
    """Non-default weights (nonzero biases) so every term of the gate equations matters."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.4, size=variable.shape).astype("float32"))


def _model(layer, steps=6, features=3):
    inputs = keras.Input((steps, features))
    outputs = layer(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "layer_factory, expected_kind",
    [
        (lambda: keras.layers.LSTM(4, return_sequences=True), "lstm"),
        (lambda: keras.layers.LSTM(4, return_sequences=False, go_backwards=True), "lstm"),
        (lambda: keras.layers.GRU(4, return_sequences=True), "gru"),
        (lambda: keras.layers.GRU(4, reset_after=False), "gru"),
        (lambda: keras.layers.RNN(NoForgetLSTMCell(4), return_sequences=True), "lstm_no_forget"),
    ],
)
def test_rerun_equals_layer(layer_factory, expected_kind):
    model = _model(layer_factory())
    _randomize(model)
    result = inspect_layer(model, _x())
    assert result.kind == expected_kind
    assert result.max_abs_error <= 1e-5
    assert result.traces["hidden_state"].shape == (2, 6, 4)
    gates = [k for k in result.traces if k.endswith("_gate")]
    assert gates and all(0.0 <= result.traces[g].min() and result.traces[g].max() <= 1.0 for g in gates)


@pytest.mark.parametrize("cell", ["lstm", pytest.param("gru", marks=pytest.mark.one_backend)])  # JAX: the LSTM
def test_rerun_inside_bidirectional_recurrent_stack(cell):
    stack = RecurrentStack(cell=cell, units=(5, 3), bidirectional=True, name="stack")
    model = _model(stack)
    _randomize(model)
    layers = find_recurrent_layers(model)
    assert len(layers) == 4  # two layers x (forward, backward)
    assert f"stack/bidirectional_1/backward_{cell}_1" in layers
    # The second layer's input is the first layer's output, so this checks the capture at depth too.
    assert inspect_layer(model, _x(), f"stack/bidirectional_1/forward_{cell}_1").max_abs_error <= 1e-5
    backward = inspect_layer(model, _x(), f"backward_{cell}_0")
    assert backward.go_backwards and backward.max_abs_error <= 1e-5


def test_rerun_with_mask_and_initial_state():
    inputs = keras.Input((6, 3))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    model = keras.Model(inputs, RecurrentStack(cell="lstm", units=(4,), bidirectional=True)(masked))
    _randomize(model)
    x = _x()
    x[0, 4:] = 0.0  # right padding in the first example
    for path in find_recurrent_layers(model):
        assert inspect_layer(model, x, path).max_abs_error <= 1e-5


def test_layer_selection_errors():
    model = _model(keras.layers.Dense(2))
    with pytest.raises(InspectError, match="no LSTM/GRU"):
        select_layer(model)
    model = _model(RecurrentStack(cell="gru", units=(3,), bidirectional=True))
    with pytest.raises(InspectError, match="recurrent layers:"):
        select_layer(model, "nope")


def _tiny_run_dir(tmp_path, model, x, y):
    cfg = TrainConfig(epochs=1, batch_size=4)
    model.compile(optimizer="adam", loss="mse")
    with RunDir(tmp_path / "run") as run:
        (run.path / "config.json").write_text(json.dumps({"train": dataclasses.asdict(cfg)}))
        fit(model, (x, y), None, cfg, run)
    return tmp_path / "run"


@pytest.mark.one_backend  # the command around inspect_layer, checked above under both
def test_cli_on_trained_run_dir(tmp_path, capsys):
    inputs = keras.Input((8, 3), name="frames")
    hidden = RecurrentStack(cell="lstm", units=(4,), bidirectional=True, return_sequences=False)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    x = _x(batch=4, steps=8)
    run_dir = _tiny_run_dir(tmp_path, model, x, np.ones((4, 1), dtype="float32"))
    np.save(tmp_path / "x.npy", x[0])  # without the batch axis
    out = tmp_path / "gates.png"
    assert main(["--run-dir", str(run_dir), "--input", str(tmp_path / "x.npy"), "--layer", "backward_lstm_0",
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    traces = np.load(out.with_suffix(".npz"))
    assert traces["forget_gate"].shape == (1, 8, 4)
    assert "max |error|" in capsys.readouterr().out
    assert main(["--run-dir", str(run_dir), "--list"]) == 0
    assert "forward_lstm_0" in capsys.readouterr().out
    # User mistakes: a clear one-line error and exit code 2.
    assert main(["--run-dir", str(tmp_path / "missing"), "--input", "x.npy"]) == 2
    assert main(["--run-dir", str(run_dir), "--input", str(tmp_path / "x.npy"), "--layer", "nope"]) == 2
    assert main(["--run-dir", str(run_dir), "--input", "just some words"]) == 2
    assert "error:" in capsys.readouterr().err


def test_input_adapters(tmp_path):
    # CSV: numeric columns, most recent window of a fixed-length model.
    series = _model(keras.layers.GRU(2), steps=5, features=2)
    (tmp_path / "s.csv").write_text("date,a,b\n" + "".join(f"2020-01-{d:02d},{d},{-d}\n" for d in range(1, 9)))
    window = load_input(str(tmp_path / "s.csv"), series)
    assert window.shape == (1, 5, 2) and window[0, -1, 0] == 8.0
    with pytest.raises(InspectError, match="--columns"):
        load_input(str(tmp_path / "s.csv"), _model(keras.layers.GRU(2), steps=5, features=3))
    # Audio: raw waveform models get [1, samples] padded to the fixed length.
    import soundfile

    soundfile.write(tmp_path / "a.wav", np.linspace(-0.5, 0.5, 100).astype("float32"), 8000)
    audio_in = keras.Input((160,))
    audio_model = keras.Model(audio_in, keras.layers.Dense(1)(audio_in))
    audio = load_input(str(tmp_path / "a.wav"), audio_model)
    assert audio.shape == (1, 160) and audio[0, 120] == 0.0
    # Text: only for models that take strings.
    with pytest.raises(InspectError, match="not raw text"):
        load_input("hello there", series)
    text_model_input = keras.Input((1,), dtype="string")
    text = load_input("hello there", keras.Model(text_model_input, text_model_input))
    assert text.shape == (1, 1) and text[0, 0] == "hello there"


def test_custom_layer_modules_are_found_in_the_archive(tmp_path):
    from common.gates import import_custom_layer_modules

    model = _model(keras.layers.RNN(NoForgetLSTMCell(2)))
    model.save(tmp_path / "m.keras")
    assert import_custom_layer_modules(tmp_path / "m.keras") == ["common.cells"]
