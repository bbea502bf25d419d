"""Keyword-spotting models: raw 16 kHz waveform in, class probabilities out.

Architectures (`model.architecture`), all built from `common.layers`:
- `crnn`: log-mel -> 2-D conv blocks -> (Bi)GRU/LSTM `RecurrentStack` -> `AttentionPooling` -> softmax.
- `attention_rnn`: de Andrade et al. 2018: (5x1) convs -> BiLSTM stack -> attention pooling -> dense head.
- `streaming`: frame-wise log-mel -> per-frame projection -> unidirectional `RecurrentStack` -> last step
  (or, with `model.streaming_readout=attention`, attention pooling over every step so far).
  `build_streaming_model` turns it into a fixed-shape step model (audio chunk + external state in,
  probabilities + new state out) that matches the full model on the same audio.

Sub-layers are named (`frontend`, `normalization`, `clip_mean_norm`, `spec_augment`, `frame_projection`,
`recurrent`, `classifier`) so the streaming builder looks them up by name.
"""

from __future__ import annotations

import keras
import numpy as np

from apps.speech.config import AugmentConfig, FeatureConfig, ModelConfig
from apps.speech.features import (PCEN, CausalMeanNormalization, ClipMeanNormalization, FrequencyWarp,
                                  LogMelSpectrogram, RunningMeanNormalization, SpecAugment)
from common.layers import AttentionPooling, RecurrentStack, StreamingAttentionPooling, build_streaming_step_model
from common.errors import UsageError

PCEN_SECONDS = 0.4  # time constant of the PCEN smoother (Wang et al.'s s = 0.025 at a 10 ms hop)


@keras.saving.register_keras_serializable(package="speech")
class LastSteps(keras.layers.Layer):
    """Keeps the last `count` steps of axis 1; `count=None` returns the last step without the axis.

    Input shape: `[batch, time, ...]`. Output: `[batch, ...]` or `[batch, count, ...]`.
    """

    def __init__(self, count: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.count = None if count is None else int(count)

    def call(self, inputs):
        if self.count is None:
            return inputs[:, -1]
        return inputs[:, -self.count:]

    def compute_output_shape(self, input_shape):
        if self.count is None:
            return (input_shape[0],) + tuple(input_shape[2:])
        return (input_shape[0], self.count) + tuple(input_shape[2:])

    def get_config(self):
        config = super().get_config()
        config.update(count=self.count)
        return config


def make_frontend(features: FeatureConfig, sample_rate: int, causal_padding: bool = True, dft: str = "stft",
                  name: str = "frontend") -> LogMelSpectrogram:
    return LogMelSpectrogram(
        sample_rate=sample_rate, frame_length=features.frame_length, frame_step=features.frame_step,
        fft_length=features.fft_length, num_mel_bins=features.num_mel_bins,
        lower_edge_hertz=features.lower_edge_hertz, upper_edge_hertz=min(features.upper_edge_hertz, sample_rate / 2),
        kind=features.kind, num_mfcc=features.num_mfcc, causal_padding=causal_padding, dft=dft, name=name,
    )


def adapt_normalization(model: keras.Model, audio: np.ndarray, batch_size: int = 128) -> None:
    """Sets the per-bin feature mean/variance from training audio (preprocessing state kept in the model)."""
    frontend = model.get_layer("frontend")
    norm = model.get_layer("normalization")
    pcen = model.get_layer("pcen") if "pcen" in {layer.name for layer in model.layers} else None

    def features(batch):
        x = frontend(batch)
        return np.asarray(pcen(x) if pcen is not None else x)

    feats = np.concatenate([features(audio[i:i + batch_size]) for i in range(0, len(audio), batch_size)])
    norm.adapt(feats)  # statistics over examples and frames, per bin


def build_model(cfg: ModelConfig, features: FeatureConfig, augment: AugmentConfig, num_classes: int,
                sample_rate: int = 16000, clip_seconds: float = 1.0, seed: int = 0) -> keras.Model:
    """The classifier for `cfg.architecture`; input `[batch, samples]` float32 audio in [-1, 1]."""
    num_samples = int(round(sample_rate * clip_seconds))
    audio = keras.Input((num_samples,), name="audio")
    frontend = make_frontend(features, sample_rate)
    x = frontend(audio)  # [batch, frames, bins]
    if augment.freq_warp > 0:  # training only, so inference, export and the step model never see it
        if features.kind != "log_mel":
            raise UsageError("augment.freq_warp warps log-mel bins; it needs features.kind=log_mel "
                             "(or set augment.freq_warp=0)")
        x = FrequencyWarp(frontend.num_mel_bins, frontend.lower_edge_hertz, frontend.upper_edge_hertz,
                          max_warp=augment.freq_warp, seed=seed, name="freq_warp")(x)
    if features.compression == "pcen":
        if features.kind != "log_mel":
            raise UsageError("features.compression=pcen replaces the log of mel energies; it needs "
                             "features.kind=log_mel (or set features.compression=log)")
        x = PCEN(time_constant_frames=PCEN_SECONDS * sample_rate / features.frame_step, name="pcen")(x)
    # Per-bin standardisation, adapted on training audio before fit: frame-wise, so it streams.
    x = keras.layers.Normalization(axis=-1, name="normalization")(x)
    if features.clip_mean_norm == "on" and cfg.architecture == "streaming":
        raise ValueError("features.clip_mean_norm=on needs the whole clip, so the streaming architecture cannot "
                         "use it; set features.clip_mean_norm=auto (off for streaming) or off")
    # After the (affine, per-bin) global standardisation, so adapt_normalization is unchanged.
    if features.clip_mean_norm == "on" or (features.clip_mean_norm == "auto" and cfg.architecture != "streaming"):
        x = ClipMeanNormalization(name="clip_mean_norm")(x)
    elif features.clip_mean_norm == "causal":
        x = CausalMeanNormalization(name="causal_mean_norm")(x)
    elif features.clip_mean_norm == "running":
        x = RunningMeanNormalization(features.mean_norm_seconds * sample_rate / features.frame_step,
                                     name="running_mean_norm")(x)
    x = SpecAugment(augment.freq_masks, augment.freq_mask_width, augment.time_masks, augment.time_mask_width,
                    seed=seed, name="spec_augment")(x)
    if cfg.architecture == "crnn":
        x = _crnn_body(x, cfg)
    elif cfg.architecture == "attention_rnn":
        x = _attention_rnn_body(x, cfg)
    elif cfg.architecture == "streaming":
        x = keras.layers.Dense(cfg.dense_units, activation="relu", name="frame_projection")(x)  # [batch, frames, dense]
        x = RecurrentStack(cell=cfg.cell, units=cfg.units, bidirectional=False, dropout_rate=cfg.dropout_rate,
                           return_sequences=True, implementation=cfg.rnn_implementation,
                           scan_unroll=cfg.scan_unroll, name="recurrent")(x)
        if cfg.streaming_readout == "attention":
            x = AttentionPooling(cfg.attention_units, name="attention_pooling")(x)  # [batch, width]
        else:
            x = LastSteps(name="last_step")(x)  # [batch, width]
    else:
        raise ValueError(f"unknown model.architecture {cfg.architecture!r}; choose crnn, attention_rnn or streaming")
    if cfg.dropout_rate > 0:
        x = keras.layers.Dropout(cfg.dropout_rate, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier", dtype="float32")(x)
    return keras.Model(audio, outputs, name=f"speech_{cfg.architecture}")


def _crnn_body(x, cfg: ModelConfig):
    frames, bins = x.shape[1], x.shape[2]
    x = keras.layers.Reshape((frames, bins, 1), name="add_channel")(x)
    for i, filters in enumerate(cfg.conv_filters):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"conv_norm_{i}")(x)
        x = keras.layers.Activation("relu", name=f"conv_relu_{i}")(x)
        x = keras.layers.MaxPooling2D((2, 2), padding="same", name=f"conv_pool_{i}")(x)  # halves time and frequency
    x = keras.layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="merge_channels")(x)  # [batch, time, f*c]
    x = RecurrentStack(cell=cfg.cell, units=cfg.units, bidirectional=cfg.bidirectional,
                       dropout_rate=cfg.dropout_rate, return_sequences=True, implementation=cfg.rnn_implementation,
                       scan_unroll=cfg.scan_unroll, name="recurrent")(x)
    return AttentionPooling(cfg.attention_units, name="attention_pooling")(x)


def _attention_rnn_body(x, cfg: ModelConfig):
    frames, bins = x.shape[1], x.shape[2]
    x = keras.layers.Reshape((frames, bins, 1), name="add_channel")(x)
    # (5 x 1) convolutions smooth along time only, as in de Andrade et al. 2018.
    x = keras.layers.Conv2D(10, (5, 1), padding="same", activation="relu", name="conv_0")(x)
    x = keras.layers.BatchNormalization(name="conv_norm_0")(x)
    x = keras.layers.Conv2D(1, (5, 1), padding="same", activation="relu", name="conv_1")(x)
    x = keras.layers.BatchNormalization(name="conv_norm_1")(x)
    x = keras.layers.Reshape((frames, bins), name="drop_channel")(x)
    x = RecurrentStack(cell=cfg.cell, units=cfg.units, bidirectional=cfg.bidirectional,
                       dropout_rate=cfg.dropout_rate, return_sequences=True, implementation=cfg.rnn_implementation,
                       scan_unroll=cfg.scan_unroll, name="recurrent")(x)
    x = AttentionPooling(cfg.attention_units, name="attention_pooling")(x)
    x = keras.layers.Dense(cfg.dense_units, activation="relu", name="head_dense_0")(x)
    return keras.layers.Dense(max(8, cfg.dense_units // 2), name="head_dense_1")(x)


def with_prefix(model: keras.Model, prefix_clips: int) -> keras.Model:
    """The `streaming` classifier on `1 + prefix_clips` clips of audio, sharing every layer (and so
    every weight) with `model`, for training on [earlier clips][clip] with the last clip's label.

    A model trained on single clips learns to hold a word's posterior through the silence after
    it, and its step model, run on and on, latches (docs/results.md, keyword spotting). Trained
    with earlier clips before each one, the state learns to let go of them.
    """
    names = [layer.name for layer in model.layers]
    if "frame_projection" not in names:
        raise ValueError("augment.prefix_clips trains the streaming architecture only; "
                         "add --set model.architecture=streaming or leave augment.prefix_clips=0")
    audio = keras.Input((model.inputs[0].shape[1] * (1 + prefix_clips),), name="audio")
    x = audio
    for layer in model.layers[1:]:  # a chain of frame-wise layers: each takes any number of frames
        x = layer(x)
    return keras.Model(audio, x, name=f"{model.name}_prefixed")


def compile_model(model: keras.Model, optimizer) -> keras.Model:
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def export_copy(model: keras.Model, unroll: bool = False) -> keras.Model:
    """The same model with a matmul DFT (ONNX/TFLite lack a portable RFFT) and constant normalization
    statistics, optionally with unrolled recurrences: a loop-free graph that TFLite converts with
    builtin ops only. Weights are copied."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"].endswith("RecurrentStack") and unroll:
            layer["config"]["unroll"] = True
        if layer["class_name"].endswith("LogMelSpectrogram"):
            layer["config"]["dft"] = "matmul"
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # recomputes mean/variance tensors from the copied statistics
            # As NumPy arrays they trace into graph constants; as eager tensors tf2onnx would make
            # them extra graph inputs that the caller must feed.
            layer.mean = keras.ops.convert_to_numpy(layer.mean)
            layer.variance = keras.ops.convert_to_numpy(layer.variance)
    return copy


def build_streaming_model(model: keras.Model, chunk_frames: int, batch_size: int = 1, dft: str = "matmul") -> keras.Model:
    """Fixed-shape step model of a trained `streaming` classifier, with all state external.

    Inputs: `audio_chunk [batch, chunk_frames * frame_step]`, `audio_context [batch, fft_length - frame_step]`
    (the previous samples the next frames overlap with; zeros at the start), with
    `features.compression=pcen` its smoothed energy `pcen_smoother [batch, bins]`, with
    `features.clip_mean_norm=causal` the running feature sum `mean_norm_sum [batch, bins]` and
    frame count `mean_norm_count [batch, 1]` (with `running`: the moving average `mean_norm_running
    [batch, bins]`), the recurrent states `state_i [batch, width]`, and with
    `model.streaming_readout=attention` the online softmax's `attention_max [batch, 1]`,
    `attention_sum [batch, 1]` and `attention_values [batch, width]`
    (all zeros at the start).
    Outputs: `[probabilities [batch, classes], new_audio_context, *new_norm_states, *new_states, *new_pool_states]`.
    After feeding a whole clip chunk by chunk, the last probabilities equal `model(clip)`.
    Trained on single clips (`augment.prefix_clips=0`), the classifier run on and on over a
    continuous stream holds a detected word for seconds (docs/results.md, keyword spotting): start
    every utterance from a fresh state, or use `apps.speech.spotting.staggered_step_posteriors`
    (staggered states, each reset once per clip). Trained with `augment.prefix_clips=1` it runs on
    a live stream without resets.
    `dft="matmul"` keeps the TFLite graph within builtin ops.
    """
    names = {layer.name for layer in model.layers}
    if "frame_projection" not in names or "recurrent" not in names:
        raise UsageError(f"model {model.name!r} is not a streaming architecture; train with --set model.architecture=streaming")
    frontend = model.get_layer("frontend")
    stack = model.get_layer("recurrent")
    config = frontend.get_config()
    config.update(causal_padding=False, dft=dft, name="frontend_step")
    step_frontend = LogMelSpectrogram.from_config(config)
    chunk_samples = chunk_frames * frontend.frame_step
    chunk = keras.Input((chunk_samples,), batch_size=batch_size, name="audio_chunk")
    context = keras.Input((frontend.context_samples,), batch_size=batch_size, name="audio_context")
    states = [keras.Input((w,), batch_size=batch_size, name=f"state_{i}") for i, w in enumerate(stack.state_shapes())]
    joined = keras.layers.Concatenate(axis=1, name="join_context")([context, chunk])  # [batch, context + chunk]
    x = step_frontend(joined)  # [batch, chunk_frames, bins]
    norm_states, new_norm_states = [], []  # inputs and outputs of the stateful feature layers, in order
    if "pcen" in names:  # the smoothed energy per bin
        smoother = keras.Input((x.shape[-1],), batch_size=batch_size, name="pcen_smoother")
        pcen = model.get_layer("pcen")
        config = pcen.get_config()
        config.update(name="pcen_step")
        step_pcen = PCEN.from_config(config)
        x, new_smoother = step_pcen([x, smoother])
        step_pcen.set_weights(pcen.get_weights())
        norm_states.append(smoother)
        new_norm_states.append(new_smoother)
    x = model.get_layer("normalization")(x)
    if "causal_mean_norm" in names:  # running sum and frame count of the features so far
        sums = [keras.Input((x.shape[-1],), batch_size=batch_size, name="mean_norm_sum"),
                keras.Input((1,), batch_size=batch_size, name="mean_norm_count")]
        # A fresh instance (the layer has no weights): Keras cannot rerun one layer object under a new input structure.
        x, *new_sums = CausalMeanNormalization(name="causal_mean_norm_step")([x] + sums)
        norm_states += sums
        new_norm_states += new_sums
    elif "running_mean_norm" in names:  # the moving average per bin
        running = keras.Input((x.shape[-1],), batch_size=batch_size, name="mean_norm_running")
        config = model.get_layer("running_mean_norm").get_config()
        config.update(name="running_mean_norm_step")
        x, new_running = RunningMeanNormalization.from_config(config)([x, running])
        norm_states.append(running)
        new_norm_states.append(new_running)
    x = model.get_layer("frame_projection")(x)
    step = build_streaming_step_model(stack, x.shape[-1], chunk_size=chunk_frames, batch_size=batch_size,
                                      name="recurrent_step")
    results = step([x] + states)
    sequence, new_states = results[0], list(results[1:])
    pool_states, new_pool_states = [], []
    if "attention_pooling" in names:  # attention over every frame so far, as an online softmax
        pool = model.get_layer("attention_pooling")
        width = sequence.shape[-1]
        pool_states = [keras.Input((1,), batch_size=batch_size, name="attention_max"),
                       keras.Input((1,), batch_size=batch_size, name="attention_sum"),
                       keras.Input((width,), batch_size=batch_size, name="attention_values")]
        step_pool = StreamingAttentionPooling(pool.units, name="attention_pooling_step")
        last, *new_pool_states = step_pool([sequence] + pool_states)
        step_pool.set_weights(pool.get_weights())
    else:
        last = LastSteps(name="last_step")(sequence)
    probabilities = model.get_layer("classifier")(last)
    new_context = LastSteps(frontend.context_samples, name="next_context")(joined)
    return keras.Model([chunk, context] + norm_states + states + pool_states,
                       [probabilities, new_context] + new_norm_states + new_states + new_pool_states,
                       name="speech_streaming_step")


def initial_streaming_state(step_model: keras.Model) -> list[np.ndarray]:
    """Zero audio context and recurrent states for a fresh stream."""
    return [np.zeros(tuple(t.shape), dtype="float32") for t in step_model.inputs[1:]]


def stream_chunks(step_model: keras.Model, audio: np.ndarray, runner=None, reset=None):
    """Feeds `audio [batch, samples]` through the step model chunk by chunk from a fresh state and
    yields the probabilities `[batch, classes]` after each whole chunk (a trailing part is left out).

    `runner(inputs) -> outputs` runs another implementation (e.g. TFLite) of the same step model;
    `reset(i, state)` may set rows of the state arrays back to zero before chunk `i`.
    """
    chunk = step_model.inputs[0].shape[1]
    state = initial_streaming_state(step_model)
    for i in range(audio.shape[1] // chunk):
        if reset is not None:
            reset(i, state)
        inputs = [audio[:, i * chunk:(i + 1) * chunk].astype("float32")] + state
        outputs = runner(inputs) if runner else [np.array(o) for o in step_model.predict_on_batch(inputs)]
        state = list(outputs[1:])
        yield outputs[0]


def stream_clip(step_model: keras.Model, audio: np.ndarray, runner=None) -> np.ndarray:
    """Runs `audio [batch, samples]` through the step model chunk by chunk; returns the last probabilities.

    `runner(inputs) -> outputs` runs another implementation (e.g. TFLite) of the same step model.
    """
    chunk = step_model.inputs[0].shape[1]
    if audio.shape[1] % chunk:
        raise ValueError(f"audio length {audio.shape[1]} is not a multiple of the streaming chunk ({chunk} samples)")
    probabilities = None
    for probabilities in stream_chunks(step_model, audio, runner):
        pass
    return probabilities


# ---------------------------------------------------------------- domain-adversarial training

@keras.saving.register_keras_serializable(package="speech")
class GradientReversal(keras.layers.Layer):
    """Identity forward; the gradient flowing back is multiplied by `-weight` (Ganin & Lempitsky 2015).

    Written as `stop_gradient((1 + w) x) - w x`, which is `x` in value on every backend.
    """

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, x):
        return keras.ops.stop_gradient(x * (1.0 + self.weight)) - self.weight * x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def with_domain_head(model: keras.Model, weight: float, units: int, seed: int = 0) -> keras.Model:
    """A train-time model sharing every layer of `model`: output `[batch, classes + 1]`, the class
    probabilities and, through a gradient-reversal layer on the pooled features, the probability
    that the clip is real (unlabeled target-domain audio). Train it on `domain_adversarial_loss`
    with labels packed as `[class, is_real]`; `model` itself stays the plain classifier."""
    head = [layer for layer in model.layers if layer.name in ("head_dropout", "classifier")]
    if not head or head[-1].name != "classifier":
        raise ValueError("domain-adversarial training needs a model whose last layer is named 'classifier'")
    features = keras.Model(model.inputs, head[0].input, name="pooled_features")
    audio = keras.Input(model.inputs[0].shape[1:], name="audio")
    pooled = features(audio)
    probs = pooled
    for layer in head:
        probs = layer(probs)
    d = GradientReversal(weight, name="gradient_reversal")(pooled)
    d = keras.layers.Dense(units, activation="relu", name="domain_dense",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(d)
    d = keras.layers.Dense(1, activation="sigmoid", name="domain", dtype="float32")(d)
    out = keras.layers.Concatenate(name="classes_and_domain", dtype="float32")([probs, d])
    return keras.Model(audio, out, name=f"{model.name}_domain_adversarial")


def domain_adversarial_loss(num_classes: int):
    """Per-clip loss for `with_domain_head` models, labels `[class, is_real]`: cross-entropy on the
    labeled (synthetic) clips, scaled so its batch mean is their mean, plus the domain head's
    binary cross-entropy on every clip."""

    def loss(y_true, y_pred):
        ops = keras.ops
        label = ops.cast(y_true[:, 0], "int32")
        real = ops.cast(y_true[:, 1], "float32")
        labeled = 1.0 - real
        ce = keras.losses.sparse_categorical_crossentropy(label, y_pred[:, :num_classes])
        scale = ops.cast(ops.shape(labeled)[0], "float32") / ops.maximum(ops.sum(labeled), 1.0)
        domain = keras.losses.binary_crossentropy(ops.expand_dims(real, -1), y_pred[:, num_classes:])
        return ce * labeled * scale + domain

    return loss


class LabeledAccuracy(keras.metrics.Metric):
    """Class accuracy over the labeled clips of `[class, is_real]` batches (real clips have no label)."""

    def __init__(self, num_classes: int, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        labeled = 1.0 - ops.cast(y_true[:, 1], "float32")
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred[:, :self.num_classes], axis=-1), "int32"),
                                 ops.cast(y_true[:, 0], "int32")), "float32")
        self.correct.assign_add(ops.sum(hit * labeled))
        self.count.assign_add(ops.sum(labeled))

    def result(self):
        return self.correct / keras.ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
