"""Front-end and model contract tests: shapes, STFT/matmul parity, chunked == full, serialization."""

import dataclasses

import numpy as np
import pytest

from apps.speech.config import PRESETS
from apps.speech.features import (PCEN, CausalMeanNormalization, ClipMeanNormalization, FrequencyWarp, LogMelSpectrogram,
                                  RunningMeanNormalization, SpecAugment, num_frames)
from apps.speech.model import LastSteps, adapt_normalization, build_model, build_streaming_model, stream_clip
from common.errors import UsageError

RNG = np.random.default_rng(0)
AUDIO = (0.1 * RNG.standard_normal((2, 4000))).astype("float32")  # 0.25 s at 16 kHz


def test_log_mel_shape_and_dft_parity():
    stft = LogMelSpectrogram(num_mel_bins=16)
    matmul = LogMelSpectrogram(num_mel_bins=16, dft="matmul")
    a, b = np.asarray(stft(AUDIO)), np.asarray(matmul(AUDIO))
    assert a.shape == (2, 4000 // 160, 16) == stft.compute_output_shape((2, 4000))
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_log_mel_matches_a_numpy_reference():
    from apps.speech.features import mel_weight_matrix

    layer = LogMelSpectrogram(num_mel_bins=16, causal_padding=False)
    ours = np.asarray(layer(AUDIO[:1]))[0]  # [frames, mels]
    window = np.pad(np.hanning(401)[:-1], (56, 56))  # periodic Hann(400) centred in the 512-sample frame
    frames = np.stack([AUDIO[0, i:i + 512] for i in range(0, 4000 - 512 + 1, 160)])
    power = np.abs(np.fft.rfft(frames * window, n=512)) ** 2
    reference = np.log(power @ mel_weight_matrix(16, 257, 16000, 20.0, 7600.0) + 1e-6)
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_mfcc_shape_and_config_round_trip():
    layer = LogMelSpectrogram(kind="mfcc", num_mel_bins=20, num_mfcc=10)
    assert np.asarray(layer(AUDIO)).shape == (2, 25, 10)
    clone = LogMelSpectrogram.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(clone(AUDIO)), np.asarray(layer(AUDIO)), atol=1e-6)


def test_frontend_is_frame_wise_chunked_equals_full():
    full = LogMelSpectrogram(num_mel_bins=16)
    step = LogMelSpectrogram(num_mel_bins=16, causal_padding=False, dft="matmul")
    context = np.zeros((2, step.context_samples), "float32")
    chunks = []
    for start in range(0, 4000, 800):
        joined = np.concatenate([context, AUDIO[:, start:start + 800]], axis=1)
        chunks.append(np.asarray(step(joined)))
        context = joined[:, -step.context_samples:]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), np.asarray(full(AUDIO)), atol=1e-4)
    assert num_frames(4000, 512, 160) == 25


@pytest.mark.parametrize("kwargs", [dict(kind="spectrum"), dict(fft_length=256), dict(frame_step=0), dict(dft="fft")])
def test_log_mel_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        LogMelSpectrogram(**kwargs)


def test_spec_augment_masks_only_in_training():
    features = RNG.standard_normal((4, 30, 16)).astype("float32")
    layer = SpecAugment(freq_masks=2, freq_mask_width=4, time_masks=2, time_mask_width=5, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(features, training=False)), features)
    masked = np.asarray(layer(features, training=True))
    assert masked.shape == features.shape and (masked != features).any()


def test_frequency_warp_moves_formants_by_the_factor_and_is_identity_at_inference():
    layer = FrequencyWarp(40, 20.0, 7600.0, max_warp=0.2, seed=0)
    centres = layer._centres_hz
    for alpha in (0.85, 1.0, 1.15):
        source = np.asarray(layer.source_bins(np.array([[alpha]], "float32")))[0]
        # Below the knee, output bin i reads the bin whose centre is at centre_i / alpha.
        low = (centres < 0.8 * 7600.0 * min(alpha, 1.0)) & (source > 0)  # (the lowest bins clip at bin 0)
        read_hz = 700.0 * np.expm1((layer._mel_low + (source + 1.0) * layer._mel_step) / 1127.0)
        np.testing.assert_allclose(read_hz[low], centres[low] / alpha, rtol=1e-4)
        assert np.all(np.diff(source) > 0) and source[-1] <= 39.0  # monotone, top band kept
    features = np.zeros((16, 7, 40), "float32")
    features[:, :, 12] = 1.0  # one "formant" at bin 12
    warped = np.asarray(layer(features, training=True))
    peaks = warped[:, 0].argmax(-1)
    assert len(set(peaks.tolist())) > 1 and np.all(np.abs(peaks - 12) <= 3)  # moved, by at most 20 %
    np.testing.assert_allclose(warped[:, 0].sum(-1), 1.0, atol=0.3)  # energy moved, not made
    np.testing.assert_array_equal(np.asarray(layer(features, training=False)), features)
    copy = FrequencyWarp.from_config(layer.get_config())
    assert copy.max_warp == 0.2 and copy.num_mel_bins == 40


@pytest.mark.parametrize("architecture", ["crnn", "attention_rnn", "streaming"])
def test_architectures_shapes_and_train_step(architecture):
    cfg = PRESETS["tiny"]
    model = build_model(dataclasses.replace(cfg.model, architecture=architecture), cfg.features, cfg.augment,
                        num_classes=5, clip_seconds=0.25)
    adapt_normalization(model, AUDIO)
    probs = np.asarray(model(AUDIO))
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    if architecture == "crnn":  # one train step (the streaming model trains in the end-to-end test)
        model.compile("adam", "sparse_categorical_crossentropy")
        assert np.isfinite(model.train_on_batch(AUDIO, np.array([0, 1])))


@pytest.mark.parametrize("mean_norm,readout,compression", [("auto", "last", "log"), ("causal", "last", "pcen"),
                                                         ("running", "attention", "log")])
def test_streaming_step_model_equals_full_model(mean_norm, readout, compression):
    cfg = PRESETS["tiny"]
    model = build_model(dataclasses.replace(cfg.model, architecture="streaming", units=(6, 4), streaming_readout=readout),
                        dataclasses.replace(cfg.features, clip_mean_norm=mean_norm, compression=compression),
                        cfg.augment, num_classes=4, clip_seconds=0.25)
    adapt_normalization(model, AUDIO)
    step = build_streaming_model(model, chunk_frames=5)
    assert step.inputs[0].shape == (1, 800)
    input_names = [t.name.split(":")[0] for t in step.inputs]
    assert ("mean_norm_sum" in input_names) == (mean_norm == "causal")
    assert ("mean_norm_running" in input_names) == (mean_norm == "running")
    assert ("pcen_smoother" in input_names) == (compression == "pcen")
    assert ("attention_sum" in input_names) == (readout == "attention")
    np.testing.assert_allclose(stream_clip(step, AUDIO[1:2]), np.asarray(model(AUDIO[1:2])), atol=1e-5)
    with pytest.raises(ValueError, match="not a multiple"):
        stream_clip(step, AUDIO[:1, :900])


def test_streaming_needs_streaming_architecture():
    cfg = PRESETS["tiny"]
    model = build_model(cfg.model, cfg.features, cfg.augment, num_classes=3, clip_seconds=0.25)
    with pytest.raises(ValueError, match="streaming"):
        build_streaming_model(model, 5)


def test_clip_mean_norm_cancels_a_fixed_channel():
    features = RNG.standard_normal((2, 30, 16)).astype("float32")
    channel = RNG.standard_normal((1, 1, 16)).astype("float32")  # a microphone's constant log-gain per bin
    layer = ClipMeanNormalization()
    out = np.asarray(layer(features))
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer(features + channel)), out, atol=1e-5)
    cfg = PRESETS["tiny"]

    def has_layer(architecture, setting):
        model = build_model(dataclasses.replace(cfg.model, architecture=architecture),
                            dataclasses.replace(cfg.features, clip_mean_norm=setting), cfg.augment, num_classes=3,
                            clip_seconds=0.25)
        return "clip_mean_norm" in {layer.name for layer in model.layers}

    assert has_layer("crnn", "auto") and has_layer("attention_rnn", "on") and not has_layer("crnn", "off")
    assert not has_layer("streaming", "auto")  # the streaming model never sees the whole clip
    with pytest.raises(ValueError, match="clip_mean_norm=on"):
        has_layer("streaming", "on")


def test_causal_mean_norm_uses_only_the_past_and_streams():
    features = RNG.standard_normal((2, 12, 5)).astype("float32")
    layer = CausalMeanNormalization()
    full = np.asarray(layer(features))
    expected = features - np.cumsum(features, axis=1) / np.arange(1, 13)[None, :, None]
    np.testing.assert_allclose(full, expected, atol=1e-5)
    np.testing.assert_allclose(full[:, 0], 0.0, atol=1e-6)  # the first frame is its own mean
    total, count = np.zeros((2, 5), "float32"), np.zeros((2, 1), "float32")
    pieces = []
    for start in range(0, 12, 4):  # three chunks carry the running sum and count
        y, total, count = (np.asarray(t) for t in layer([features[:, start:start + 4], total, count]))
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-5)
    np.testing.assert_array_equal(count, 12.0)


def test_running_mean_norm_is_a_causal_moving_average_and_streams():
    features = RNG.standard_normal((2, 12, 5)).astype("float32")
    layer = RunningMeanNormalization(time_constant_frames=3.0)
    full = np.asarray(layer(features))
    a, mean, expected = 1 - np.exp(-1 / 3.0), np.zeros((2, 5)), np.empty_like(features)
    for t in range(12):  # the recurrence it implements, started from zero
        mean = (1 - a) * mean + a * features[:, t]
        expected[:, t] = features[:, t] - mean
    np.testing.assert_allclose(full, expected, atol=1e-5)
    running, pieces = np.zeros((2, 5), "float32"), []
    for start in range(0, 12, 4):  # three chunks carry the moving average
        y, running = (np.asarray(t) for t in layer([features[:, start:start + 4], running]))
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-5)
    # A constant channel offset fades out: after 12 time constants only e^-12 of it is left.
    channel = RNG.standard_normal((1, 1, 5)).astype("float32")
    long = RNG.standard_normal((2, 40, 5)).astype("float32")
    shifted = np.asarray(layer(long + channel)) - np.asarray(layer(long))
    np.testing.assert_allclose(shifted[:, -1], 0.0, atol=1e-4)
    assert np.abs(shifted[:, 0]).max() > 0.1  # but not at once: it only uses the past
    assert RunningMeanNormalization.from_config(layer.get_config()).time_constant_frames == 3.0


def test_pcen_matches_its_recurrence_cancels_gain_and_streams():
    energy = np.exp(RNG.standard_normal((2, 12, 5))).astype("float32")
    layer = PCEN(time_constant_frames=3.0)
    full = np.asarray(layer(np.log(energy)))
    s, smooth, expected = 1 - np.exp(-1 / 3.0), energy[:, 0].astype("float64"), np.empty_like(energy)
    for t in range(12):  # M_t = (1 - s) M_{t-1} + s E_t from M_{-1} = E_0; (E / M^0.98 + 2)^0.5 - 2^0.5
        smooth = (1 - s) * smooth + s * energy[:, t]
        expected[:, t] = np.sqrt(energy[:, t] / (1e-6 + smooth) ** 0.98 + 2.0) - np.sqrt(2.0)
    np.testing.assert_allclose(full, expected, rtol=1e-4, atol=1e-5)
    state, pieces = np.zeros((2, 5), "float32"), []
    for start in range(0, 12, 4):  # three chunks carry the smoother; zeros start the stream like a whole clip
        y, state = (np.asarray(t) for t in layer([np.log(energy[:, start:start + 4]), state]))
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-5, atol=1e-6)
    # Automatic gain control: 40 dB louder changes the output by only the 2% of the gain alpha leaves.
    louder = np.asarray(layer(np.log(energy * 1e4)))
    assert np.abs(louder - full).max() < 0.3 * np.abs(full).max()
    assert np.abs(np.sqrt(energy * 1e4 + 2) - np.sqrt(energy + 2)).max() > 10  # the plain root would not
    assert [w.shape for w in layer.weights] == [(5,), (5,), (5,)]  # alpha, delta, r per bin, trainable
    assert PCEN.from_config(layer.get_config()).time_constant_frames == 3.0
    cfg = PRESETS["tiny"]
    with pytest.raises(UsageError, match="kind=log_mel"):
        build_model(cfg.model, dataclasses.replace(cfg.features, kind="mfcc", compression="pcen"), cfg.augment,
                    num_classes=3, clip_seconds=0.25)


def test_prefixed_training_model_shares_every_weight():
    from apps.speech.model import with_prefix

    cfg = PRESETS["tiny"]
    model = build_model(dataclasses.replace(cfg.model, architecture="streaming"), cfg.features, cfg.augment,
                        num_classes=3, clip_seconds=0.25)
    long = with_prefix(model, 2)
    assert long.inputs[0].shape == (None, 3 * 4000) and long.outputs[0].shape == (None, 3)
    assert {id(v) for v in long.weights} == {id(v) for v in model.weights}  # training one trains the other
    crnn = build_model(cfg.model, cfg.features, cfg.augment, num_classes=3, clip_seconds=0.25)
    with pytest.raises(ValueError, match="streaming architecture only"):
        with_prefix(crnn, 1)


def test_last_steps_layer():
    x = np.arange(24, dtype="float32").reshape(2, 4, 3)
    np.testing.assert_array_equal(np.asarray(LastSteps()(x)), x[:, -1])
    np.testing.assert_array_equal(np.asarray(LastSteps(2)(x)), x[:, -2:])
    assert LastSteps.from_config(LastSteps(2).get_config()).count == 2
