"""Audio front end and augmentation as Keras layers, so the model takes raw 16 kHz audio.

- `LogMelSpectrogram`: waveform `[batch, samples]` -> log-mel `[batch, frames, mels]` (or MFCCs).
  It is frame-wise: with `causal_padding=True` the signal is left-padded by
  `fft_length - frame_step` zeros and frames are not centred, so frame `i` ends at sample
  `(i+1)*step` (the Hann window of `frame_length` sits centred in the `fft_length` frame,
  as `keras.ops.stft` places it). A streaming model that keeps the last
  `fft_length - frame_step` samples as state reproduces the full run exactly.
- `ClipMeanNormalization`: per-clip mean subtraction over time (channel normalisation);
  `CausalMeanNormalization`: the same with the mean of the frames so far, for streaming;
  `RunningMeanNormalization`: an exponential moving average instead, which forgets (streams too).
- `PCEN`: trainable per-channel energy normalisation in place of the log (streams, state = the smoother).
- `SpecAugment`: time/frequency masks, active only when `training=True`.

Only `keras.ops` is used (STFT via `keras.ops.stft`), so TF and JAX run the same code.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int,
                      lower_edge_hertz: float, upper_edge_hertz: float) -> np.ndarray:
    """Triangular HTK-mel filters `[num_spectrogram_bins, num_mel_bins]` (as `tf.signal` builds them)."""
    if not 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= lower_edge_hertz < upper_edge_hertz <= {sample_rate / 2}, got {lower_edge_hertz}, {upper_edge_hertz}")
    freqs = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:]
    spectrogram_mel = _hz_to_mel(freqs)[:, None]
    edges = np.linspace(_hz_to_mel(lower_edge_hertz), _hz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slopes = (spectrogram_mel - lower) / (center - lower)
    upper_slopes = (upper - spectrogram_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


def dct_matrix(num_mel_bins: int, num_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II basis `[num_mel_bins, num_mfcc]`."""
    n = np.arange(num_mel_bins)[:, None]
    k = np.arange(num_mfcc)[None, :]
    basis = np.cos(np.pi / num_mel_bins * (n + 0.5) * k) * np.sqrt(2.0 / num_mel_bins)
    basis[:, 0] *= np.sqrt(0.5)
    return basis.astype(np.float32)


def num_frames(num_samples: int, fft_length: int, frame_step: int, causal_padding: bool = True) -> int:
    """Frames `LogMelSpectrogram` yields for `num_samples` of audio."""
    padded = num_samples + (fft_length - frame_step if causal_padding else 0)
    return 1 + (padded - fft_length) // frame_step


def causal_smoothing_weights(frames: int, time_constant_frames: float):
    """The exponential moving average `m_t = (1 - a) m_{t-1} + a x_t`, `a = 1 - exp(-1 / time_constant)`,
    over a block of `frames` as one matrix product: returns `mix [t, s]` (weight of `x_s` in `m_t`) and
    `carry [1, t, 1]` (weight of the state `m_{-1}` carried in from the previous block)."""
    a = 1.0 - np.exp(-1.0 / time_constant_frames)
    lag = np.arange(frames)[:, None] - np.arange(frames)[None, :]  # t - s
    mix = np.where(lag >= 0, a * (1.0 - a) ** np.maximum(lag, 0), 0.0).astype("float32")
    carry = ((1.0 - a) ** np.arange(1, frames + 1)).astype("float32")[None, :, None]
    return mix, carry


@keras.saving.register_keras_serializable(package="speech")
class LogMelSpectrogram(keras.layers.Layer):
    """Raw waveform to log-mel spectrogram (or MFCCs), computed inside the model.

    Args:
        sample_rate: sampling rate of the input audio in Hz.
        frame_length: samples per analysis window (Hann).
        frame_step: hop between windows in samples.
        fft_length: FFT size (>= frame_length).
        num_mel_bins: number of mel bands.
        lower_edge_hertz, upper_edge_hertz: frequency range of the mel bands.
        kind: "log_mel" or "mfcc".
        num_mfcc: coefficients kept when kind="mfcc".
        causal_padding: left-pad `fft_length - frame_step` zeros so every hop of new
            audio yields exactly one frame (streaming-compatible framing).
        dft: "stft" uses `keras.ops.stft`; "matmul" computes the same DFT as a matrix product,
            which TFLite's builtin op set supports everywhere (used by the streaming export).

    Input shape: `[batch, samples]`.
    Output shape: `[batch, frames, num_mel_bins]` (or `num_mfcc`); with causal padding
    frames = `samples // frame_step` for whole hops.
    """

    def __init__(self, sample_rate: int = 16000, frame_length: int = 400, frame_step: int = 160,
                 fft_length: int = 512, num_mel_bins: int = 40, lower_edge_hertz: float = 20.0,
                 upper_edge_hertz: float = 7600.0, kind: str = "log_mel", num_mfcc: int = 13,
                 causal_padding: bool = True, dft: str = "stft", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("log_mel", "mfcc"):
            raise ValueError(f"kind must be 'log_mel' or 'mfcc', got {kind!r}")
        if dft not in ("stft", "matmul"):
            raise ValueError(f"dft must be 'stft' or 'matmul', got {dft!r}")
        if fft_length < frame_length:
            raise ValueError(f"fft_length ({fft_length}) must be >= frame_length ({frame_length})")
        if not 0 < frame_step <= frame_length:
            raise ValueError(f"frame_step must be in (0, frame_length], got {frame_step}")
        if kind == "mfcc" and not 0 < num_mfcc <= num_mel_bins:
            raise ValueError(f"num_mfcc must be in (0, num_mel_bins], got {num_mfcc}")
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.num_mel_bins = int(num_mel_bins)
        self.lower_edge_hertz = float(lower_edge_hertz)
        self.upper_edge_hertz = float(upper_edge_hertz)
        self.kind = kind
        self.num_mfcc = int(num_mfcc)
        self.causal_padding = bool(causal_padding)
        self.dft = dft
        num_bins = self.fft_length // 2 + 1
        self._mel = mel_weight_matrix(self.num_mel_bins, num_bins, self.sample_rate,
                                      self.lower_edge_hertz, self.upper_edge_hertz)
        self._dct = dct_matrix(self.num_mel_bins, self.num_mfcc) if kind == "mfcc" else None
        # Periodic Hann window, as keras.ops.stft uses; the matmul path folds it into the DFT basis.
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.frame_length) / self.frame_length)
        left = (self.fft_length - self.frame_length) // 2
        window = np.pad(window, [left, self.fft_length - self.frame_length - left])
        angles = 2 * np.pi * np.outer(np.arange(self.fft_length), np.arange(num_bins)) / self.fft_length
        self._dft_real = (window[:, None] * np.cos(angles)).astype(np.float32)
        self._dft_imag = (-window[:, None] * np.sin(angles)).astype(np.float32)

    @property
    def context_samples(self) -> int:
        """Samples a streaming caller must carry over between chunks."""
        return self.fft_length - self.frame_step

    @property
    def output_dim(self) -> int:
        return self.num_mfcc if self.kind == "mfcc" else self.num_mel_bins

    def _frames(self, audio):
        # [batch, frames, fft_length] by static slicing: no gather, so TFLite keeps builtins.
        total = audio.shape[-1]
        count = 1 + (total - self.fft_length) // self.frame_step
        frames = [audio[:, i * self.frame_step: i * self.frame_step + self.fft_length] for i in range(count)]
        return ops.stack(frames, axis=1)

    def call(self, inputs):
        audio = ops.cast(inputs, "float32")  # [batch, samples]
        if self.causal_padding:
            audio = ops.pad(audio, [[0, 0], [self.context_samples, 0]])
        if self.dft == "stft":
            real, imag = ops.stft(audio, sequence_length=self.frame_length, sequence_stride=self.frame_step,
                                  fft_length=self.fft_length, window="hann", center=False)
        else:
            frames = self._frames(audio)  # [batch, frames, fft_length]
            real = ops.matmul(frames, ops.convert_to_tensor(self._dft_real))
            imag = ops.matmul(frames, ops.convert_to_tensor(self._dft_imag))
        power = real * real + imag * imag  # [batch, frames, fft_length // 2 + 1]
        mel = ops.matmul(power, ops.convert_to_tensor(self._mel))  # [batch, frames, mels]
        features = ops.log(mel + 1e-6)
        if self._dct is not None:
            features = ops.matmul(features, ops.convert_to_tensor(self._dct))  # [batch, frames, mfcc]
        return features

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else num_frames(samples, self.fft_length, self.frame_step, self.causal_padding)
        return (input_shape[0], frames, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate, frame_length=self.frame_length, frame_step=self.frame_step,
            fft_length=self.fft_length, num_mel_bins=self.num_mel_bins, lower_edge_hertz=self.lower_edge_hertz,
            upper_edge_hertz=self.upper_edge_hertz, kind=self.kind, num_mfcc=self.num_mfcc,
            causal_padding=self.causal_padding, dft=self.dft,
        )
        return config


@keras.saving.register_keras_serializable(package="speech")
class ClipMeanNormalization(keras.layers.Layer):
    """Subtracts each example's mean over time, per feature bin (cepstral mean normalisation).

    A fixed microphone or room colouring adds a constant per bin to log-mel features; removing
    the clip's own mean cancels it. It needs the whole clip, so streaming models do without.

    Input/output shape: `[batch, frames, bins]`.
    """

    def call(self, inputs):
        return inputs - ops.mean(inputs, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="speech")
class CausalMeanNormalization(keras.layers.Layer):
    """Subtracts, at each frame, the mean of the frames so far (a streaming-compatible mean normalisation).

    `y_t = x_t - mean(x_1..x_t)` per bin: it uses only the past, so a streaming step model reproduces
    it by carrying the running sum and frame count as state.

    Call with `x [batch, frames, bins]` for a whole clip, or with `[x, running_sum [batch, bins],
    count [batch, 1]]` to continue a stream; the latter returns `[y, new_running_sum, new_count]`
    (zeros start a stream).
    """

    def call(self, inputs):
        streaming = isinstance(inputs, (list, tuple))
        x, total, count = inputs if streaming else (inputs, None, None)
        steps = ops.cast(ops.arange(1, ops.shape(x)[1] + 1), x.dtype)[None, :, None]  # [1, frames, 1]
        sums = ops.cumsum(x, axis=1)
        if not streaming:
            return x - sums / steps
        sums = sums + total[:, None, :]
        counts = steps + count[:, None, :]
        return [x - sums / counts, sums[:, -1, :], count + ops.cast(ops.shape(x)[1], x.dtype)]


@keras.saving.register_keras_serializable(package="speech")
class RunningMeanNormalization(keras.layers.Layer):
    """Subtracts an exponential moving average over time, per bin (a causal, forgetting mean normalisation).

    `m_t = (1 - a) m_{t-1} + a x_t`, `y_t = x_t - m_t`, with `a = 1 - exp(-1 / time_constant_frames)`
    and `m_{-1} = 0` (the global mean once the features are standardised). Unlike the mean of all
    frames so far it forgets the leading silence, so within a few time constants it tracks the
    channel's offset during speech. Each chunk is one matrix product (no loop), so the step
    model exports to TFLite/ONNX builtins.

    Call with `x [batch, frames, bins]` for a whole clip, or with `[x, m [batch, bins]]` to continue
    a stream (zeros start one); the latter returns `[y, new_m]`.
    """

    def __init__(self, time_constant_frames: float = 30.0, **kwargs):
        super().__init__(**kwargs)
        if not time_constant_frames > 0:
            raise ValueError(f"time_constant_frames must be > 0, got {time_constant_frames}")
        self.time_constant_frames = float(time_constant_frames)

    def call(self, inputs):
        streaming = isinstance(inputs, (list, tuple))
        x, previous = inputs if streaming else (inputs, None)
        mix, carry = causal_smoothing_weights(x.shape[1], self.time_constant_frames)
        means = ops.matmul(ops.convert_to_tensor(mix, x.dtype), x)  # [t, s] @ [batch, s, bins], broadcast over batch
        if not streaming:
            return x - means
        means = means + ops.convert_to_tensor(carry, x.dtype) * previous[:, None, :]
        return [x - means, means[:, -1, :]]

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)):
            return [tuple(input_shape[0]), tuple(input_shape[1])]
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(time_constant_frames=self.time_constant_frames)
        return config


@keras.saving.register_keras_serializable(package="speech")
class PCEN(keras.layers.Layer):
    """Per-channel energy normalisation (Wang et al. 2017), trainable, in place of the log.

    Takes log-mel features `x = log(E + 1e-6)` and returns, per bin,
    `(E / (floor + M)^alpha + delta)^r - delta^r` with `M_t = (1 - s) M_{t-1} + s E_t` a causal
    smoother of the energy over `time_constant_frames` (`s = 1 - exp(-1 / time_constant_frames)`)
    and `M_{-1} = E_0`. Dividing by the smoothed energy is an automatic gain control per channel
    (loudness and a microphone's colouring move `E` and `M` alike); the root compresses what is
    left. `alpha`, `delta` and `r` are trained per bin in the log domain, as in the paper
    (initial 0.98, 2, 0.5; `alpha` and `r` kept at or below 1).

    The smoother is one matrix product per call (no loop), so it exports to TFLite/ONNX builtins
    and streams: call with `[x, M [batch, bins]]` to continue a stream, which returns `[y, new_M]`;
    an all-zero `M` (a fresh stream) starts from `M_{-1} = E_0`, as the whole-clip call does.

    Input/output shape: `[batch, frames, bins]`.
    """

    def __init__(self, time_constant_frames: float = 40.0, alpha: float = 0.98, delta: float = 2.0,
                 root: float = 0.5, floor: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if not time_constant_frames > 0:
            raise ValueError(f"time_constant_frames must be > 0, got {time_constant_frames}")
        if not (0 < alpha <= 1 and delta > 0 and 0 < root <= 1 and floor > 0):
            raise ValueError(f"need 0 < alpha <= 1, delta > 0, 0 < root <= 1, floor > 0; got {alpha}, {delta}, {root}, {floor}")
        self.time_constant_frames = float(time_constant_frames)
        self.alpha, self.delta, self.root, self.floor = float(alpha), float(delta), float(root), float(floor)

    def build(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        bins = int(shape[-1])
        const = keras.initializers.Constant
        self.log_alpha = self.add_weight(name="log_alpha", shape=(bins,), initializer=const(np.log(self.alpha)))
        self.log_delta = self.add_weight(name="log_delta", shape=(bins,), initializer=const(np.log(self.delta)))
        self.log_root = self.add_weight(name="log_root", shape=(bins,), initializer=const(np.log(self.root)))

    def call(self, inputs):
        streaming = isinstance(inputs, (list, tuple))
        x, previous = inputs if streaming else (inputs, None)
        x = ops.cast(x, "float32")
        energy = ops.exp(x)
        first = energy[:, :1, :]  # [batch, 1, bins]
        start = first if previous is None else ops.where(previous[:, None, :] > 0, previous[:, None, :], first)
        mix, carry = causal_smoothing_weights(x.shape[1], self.time_constant_frames)
        smooth = ops.matmul(ops.convert_to_tensor(mix), energy) + ops.convert_to_tensor(carry) * start
        alpha = ops.minimum(ops.exp(self.log_alpha), 1.0)
        delta = ops.exp(self.log_delta)
        root = ops.minimum(ops.exp(self.log_root), 1.0)
        gained = energy * ops.exp(-alpha * ops.log(self.floor + smooth))
        y = ops.exp(root * ops.log(gained + delta)) - ops.exp(root * ops.log(delta))
        if not streaming:
            return y
        return [y, smooth[:, -1, :]]

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)):
            return [tuple(input_shape[0]), tuple(input_shape[1])]
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(time_constant_frames=self.time_constant_frames, alpha=self.alpha, delta=self.delta,
                      root=self.root, floor=self.floor)
        return config


@keras.saving.register_keras_serializable(package="speech")
class SpecAugment(keras.layers.Layer):
    """SpecAugment (Park et al. 2019) time and frequency masking; identity at inference.

    Args:
        freq_masks: number of frequency masks per example.
        freq_mask_width: maximum width of a frequency mask (bins).
        time_masks: number of time masks per example.
        time_mask_width: maximum width of a time mask (frames).
        seed: seed of the layer's random generator.

    Input/output shape: `[batch, frames, bins]`. Masked cells are set to the example's mean,
    which on normalised features is close to zero.
    """

    def __init__(self, freq_masks: int = 2, freq_mask_width: int = 6, time_masks: int = 2,
                 time_mask_width: int = 10, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.freq_masks = int(freq_masks)
        self.freq_mask_width = int(freq_mask_width)
        self.time_masks = int(time_masks)
        self.time_mask_width = int(time_mask_width)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _mask(self, batch, length, count, max_width):
        positions = ops.arange(length, dtype="float32")[None, :]  # [1, length]
        keep = ops.ones((batch, length), dtype="bool")
        for _ in range(count):
            width = ops.floor(keras.random.uniform((batch, 1), 0, max_width + 1, seed=self.seed_generator))
            start = ops.floor(keras.random.uniform((batch, 1), 0, 1, seed=self.seed_generator) * (length - width + 1))
            inside = ops.logical_and(positions >= start, positions < start + width)
            keep = ops.logical_and(keep, ops.logical_not(inside))
        return keep  # [batch, length]

    def call(self, inputs, training=None):
        if not training or (self.freq_masks == 0 and self.time_masks == 0):
            return inputs
        batch = ops.shape(inputs)[0]
        frames, bins = inputs.shape[1], inputs.shape[2]
        keep_time = self._mask(batch, frames, self.time_masks, min(self.time_mask_width, frames))
        keep_freq = self._mask(batch, bins, self.freq_masks, min(self.freq_mask_width, bins))
        keep = ops.logical_and(keep_time[:, :, None], keep_freq[:, None, :])  # [batch, frames, bins]
        fill = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return ops.where(keep, inputs, ops.broadcast_to(fill, ops.shape(inputs)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(freq_masks=self.freq_masks, freq_mask_width=self.freq_mask_width,
                      time_masks=self.time_masks, time_mask_width=self.time_mask_width, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="speech")
class FrequencyWarp(keras.layers.Layer):
    """Vocal-tract-length perturbation (Jaitly & Hinton 2013) on log-mel features; identity at inference.

    Each training example's frequency axis is scaled by a random factor `alpha` in
    `[1 - max_warp, 1 + max_warp]`: the value at output frequency `g` is read at `g / alpha`
    (piecewise linear, so that from `boundary * upper_edge_hertz` up the top band still maps onto
    itself), linearly interpolated between mel bins. A longer or shorter vocal tract moves every
    formant by about the same factor, which is what this imitates; the time axis is untouched.

    Args:
        num_mel_bins, lower_edge_hertz, upper_edge_hertz: the mel filterbank of the features
            (`LogMelSpectrogram`'s), so bin centres can be mapped to Hz.
        max_warp: largest relative change of the frequency scale (0 disables).
        boundary: fraction of `upper_edge_hertz` above which the warp bends back to the identity.
        seed: seed of the layer's random generator.

    Input/output shape: `[batch, frames, num_mel_bins]` log-mel features (not MFCCs).
    """

    def __init__(self, num_mel_bins: int, lower_edge_hertz: float, upper_edge_hertz: float,
                 max_warp: float = 0.1, boundary: float = 0.8, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= max_warp < 1.0:
            raise ValueError(f"max_warp must be in [0, 1), got {max_warp}")
        self.num_mel_bins = int(num_mel_bins)
        self.lower_edge_hertz = float(lower_edge_hertz)
        self.upper_edge_hertz = float(upper_edge_hertz)
        self.max_warp = float(max_warp)
        self.boundary = float(boundary)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        edges = np.linspace(_hz_to_mel(self.lower_edge_hertz), _hz_to_mel(self.upper_edge_hertz), self.num_mel_bins + 2)
        self._mel_low = float(edges[0])
        self._mel_step = float(edges[1] - edges[0])
        self._centres_hz = (700.0 * np.expm1(edges[1:-1] / 1127.0)).astype(np.float32)  # [bins]

    def source_bins(self, alpha):
        """Fractional source bin `[batch, bins]` each output bin reads for warp factors `alpha [batch, 1]`."""
        g = ops.convert_to_tensor(self._centres_hz)[None, :]
        upper = self.upper_edge_hertz
        knee = self.boundary * upper * ops.minimum(alpha, 1.0)  # output frequency where the bend starts
        below = g / alpha
        above = knee / alpha + (g - knee) * (upper - knee / alpha) / (upper - knee)
        source_hz = ops.where(g < knee, below, above)
        mel = 1127.0 * ops.log1p(source_hz / 700.0)
        return ops.clip((mel - self._mel_low) / self._mel_step - 1.0, 0.0, self.num_mel_bins - 1.0)

    def call(self, inputs, training=None):
        if not training or self.max_warp == 0.0:
            return inputs
        batch = ops.shape(inputs)[0]
        alpha = keras.random.uniform((batch, 1), 1.0 - self.max_warp, 1.0 + self.max_warp, seed=self.seed_generator)
        source = self.source_bins(alpha)  # [batch, bins_out]
        bins = ops.arange(self.num_mel_bins, dtype="float32")[None, :, None]  # [1, bins_in, 1]
        # Linear interpolation as a [batch, bins_in, bins_out] matrix (a triangle around each source position).
        weights = ops.maximum(0.0, 1.0 - ops.abs(bins - source[:, None, :]))
        return ops.einsum("btm,bmn->btn", ops.cast(inputs, "float32"), weights)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_mel_bins=self.num_mel_bins, lower_edge_hertz=self.lower_edge_hertz,
                      upper_edge_hertz=self.upper_edge_hertz, max_warp=self.max_warp, boundary=self.boundary,
                      seed=self.seed)
        return config
