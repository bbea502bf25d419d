"""Configuration of the speech command recognizer: data, features, augmentation, model, training.

Presets: `tiny` (seconds, for tests), `default` (about 10 minutes on 2 CPU cores, offline
synthetic data), `gpu` (bigger model and data), `fsdd` (the real spoken-digit check).

    python -m apps.speech.train --config default --set model.architecture=attention_rnn --run-dir runs/speech
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from common.config import added_field, check_fields
from common.training import TrainConfig

CORE_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DIGIT_LABELS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # FSDD's digits, spoken
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
SYNTH_ENGINES = ("espeak", "pico", "mbrola", "mbrola_accented")  # what data.synthetic_engines may name (apps/speech/synth.py, pico.py, mbrola.py)
BACKGROUND_NOISE = "_background_noise_"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"  # synthetic | folder (Speech Commands layout) | fsdd | tfds:speech_commands (needs internet)
    path: str = ""  # folder or .tar.xz for folder/fsdd; empty means the shared FSDD archive for fsdd
    words: tuple[str, ...] = CORE_WORDS  # keywords; other words become _unknown_ (fsdd always uses the digits)
    include_silence: bool = True  # adds a _silence_ class (noise-only clips)
    include_unknown: bool = True  # adds an _unknown_ class for words outside `words`
    unknown_fraction: float = 1.0  # _unknown_ clips kept per split, relative to an average keyword's count
    silence_fraction: float = 1.0  # _silence_ clips made from background noise when the source has none
    sample_rate: int = 16000  # everything is resampled to this rate
    clip_seconds: float = 1.0  # clips are padded/cropped to this length
    validation_percent: float = 10.0  # speaker-hash split when the source has no validation_list.txt
    testing_percent: float = 10.0  # speaker-hash split when the source has no testing_list.txt
    test_speaker: str = ""  # fsdd: hold out this speaker as the test set (leave-one-speaker-out); empty = official split
    # fsdd: also train on synthetic eSpeak NG speakers saying the digits (synthetic_speakers voices x
    # synthetic_repeats each; every split of that synthetic set goes to training, validation and test
    # stay real FSDD), so five real speakers are not the only voices the model knows
    fsdd_add_synthetic: bool = False
    # Unlabeled real audio for domain-adversarial training (model.domain_weight > 0): an FSDD or
    # <word>/<file>.wav folder/archive. No label of it is used; data.json counts how many of its
    # recordings say a keyword (none for FSDD under the core words).
    adapt_audio: str = added_field("", since="2026-12-06")
    adapt_speakers: tuple[str, ...] = added_field((), since="2026-12-06")  # FSDD: use only these speakers' recordings (keep the others for scoring)
    # Real speech that says none of the keywords, added to training as `_unknown_` clips: an FSDD or
    # <word>/<file>.wav folder/archive (its recordings of a keyword are left out). FSDD used here can
    # no longer score false accepts or the digits proxy: pick its speakers with unknown_speakers and
    # score on the others. unknown_audio_fraction: how many of them, relative to an average keyword's
    # training count (0 keeps all).
    unknown_audio: str = added_field("", since="2026-12-06")
    unknown_speakers: tuple[str, ...] = added_field((), since="2026-12-06")
    unknown_audio_fraction: float = added_field(1.0, since="2026-12-06")
    max_per_class: int = 0  # caps training clips per class (quick experiments); 0 keeps all
    synthetic_speakers: int = 100  # more synthetic voices generalise better but take longer to generate
    synthetic_repeats: int = 3  # utterances of each keyword per synthetic speaker
    synthetic_unknown_per_speaker: int = 12  # unknown-word utterances per synthetic speaker
    # unknown words are at least this many phoneme edits from every keyword: 1 leaves out homophones
    # ("write" for "right"), 2 also near misses one phoneme away ("cup" for "up"; fewer misses of real
    # keywords sent to _unknown_, more false accepts of such words)
    synthetic_unknown_min_distance: int = added_field(1, since="2026-12-07")
    synthetic_silence_clips: int = 300  # noise-only clips generated for _silence_
    seed: int = 0  # fixes synthetic generation and the hash split
    # Speech engines that voice the synthetic speakers, taking turns: "espeak" (eSpeak NG, a pinned
    # dependency), "pico" (SVOX Pico's two English voices), "mbrola" (MBROLA's three US voices) and
    # "mbrola_accented" (MBROLA's German de4/de5 and French fr1/fr4 voices speaking English with their
    # accent), fetched once from the Debian archive into the cache (Linux x86-64). ("espeak", "pico") makes every
    # second speaker a Pico one; a repeated engine voices more of them (("espeak", "mbrola", "pico", "mbrola"):
    # half MBROLA).
    synthetic_engines: tuple[str, ...] = added_field(("espeak",), since="2026-12-07")

    def __post_init__(self):
        words = tuple(self.words)
        checks = [("sample_rate", self.sample_rate > 0, "> 0"), ("clip_seconds", self.clip_seconds > 0, "> 0"),
                  ("words", len(words) > 0 and len(set(words)) == len(words) and all(w.strip() for w in words),
                   "a non-empty tuple of distinct words"),
                  ("unknown_fraction", self.unknown_fraction >= 0, ">= 0"),
                  ("unknown_audio_fraction", self.unknown_audio_fraction >= 0, ">= 0 (0 keeps all)"),
                  ("silence_fraction", self.silence_fraction >= 0, ">= 0"),
                  ("validation_percent", 0 <= self.validation_percent < 100, "in [0, 100)"),
                  ("testing_percent", 0 <= self.testing_percent <= 100, "in [0, 100]"),
                  ("max_per_class", self.max_per_class >= 0, ">= 0 (0 keeps all)"),
                  ("synthetic_speakers", self.synthetic_speakers >= 1, ">= 1"),
                  ("synthetic_repeats", self.synthetic_repeats >= 1, ">= 1"),
                  ("synthetic_unknown_per_speaker", self.synthetic_unknown_per_speaker >= 0, ">= 0"),
                  ("synthetic_unknown_min_distance", self.synthetic_unknown_min_distance >= 1,
                   ">= 1 (phoneme edits; 1 leaves out only homophones)"),
                  ("synthetic_silence_clips", self.synthetic_silence_clips >= 0, ">= 0"),
                  ("synthetic_engines", len(tuple(self.synthetic_engines)) > 0
                   and set(self.synthetic_engines) <= set(SYNTH_ENGINES),
                   f"engines from {SYNTH_ENGINES} (a repeated one voices more of the speakers)")]
        check_fields(self, "data", checks)


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    kind: Literal["log_mel", "mfcc"] = "log_mel"  # MFCCs decorrelate bins (smaller models) but drop detail
    frame_length: int = 400  # samples per STFT window (25 ms at 16 kHz)
    frame_step: int = 160  # hop between frames (10 ms); larger hops make the RNN cheaper but coarser
    fft_length: int = 512  # FFT size >= frame_length
    num_mel_bins: int = 40  # frequency resolution of the features
    num_mfcc: int = 13  # cepstral coefficients kept when kind=mfcc
    lower_edge_hertz: float = 20.0  # lowest mel band edge
    upper_edge_hertz: float = 7600.0  # highest mel band edge (below Nyquist)
    # Subtract each clip's own mean per bin (cancels a microphone's colouring): 57% -> 71% on real
    # speech (mean of 3 seeds) for the synthetic-trained default model. "causal" subtracts the mean
    # of the frames so far (streams, state carried by the step model; gave no gain on the streaming
    # model: 0.563 vs 0.577 real, 3 seeds). "auto" = "on", except for the
    # streaming architecture, which never sees the whole clip; "on" with streaming is refused.
    # "running" subtracts an exponential moving average (time constant `mean_norm_seconds`); it streams
    # (streaming model: 0.603 real with 0.3 s against 0.577 without, 3 seeds each, within the noise).
    clip_mean_norm: Literal["auto", "on", "causal", "running", "off"] = "auto"
    mean_norm_seconds: float = 0.3  # time constant of clip_mean_norm=running
    # "pcen": trainable per-channel energy normalisation (apps.speech.features.PCEN; Wang et al. 2017,
    # smoother time constant 0.4 s) in place of the log of the mel energies; log_mel only; streams.
    compression: Literal["log", "pcen"] = "log"

    def __post_init__(self):
        # Cross-field rules (fft_length >= frame_length, ...) are checked by LogMelSpectrogram at build time.
        checks = [("frame_length", self.frame_length >= 1, ">= 1"), ("frame_step", self.frame_step >= 1, ">= 1"),
                  ("fft_length", self.fft_length >= 1, ">= 1"), ("num_mel_bins", self.num_mel_bins >= 1, ">= 1"),
                  ("num_mfcc", self.num_mfcc >= 1, ">= 1"), ("lower_edge_hertz", self.lower_edge_hertz >= 0, ">= 0"),
                  ("mean_norm_seconds", self.mean_norm_seconds > 0, "> 0")]
        check_fields(self, "features", checks)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    time_shift_seconds: float = 0.1  # random shift of the waveform, +/- this many seconds
    noise_probability: float = 0.8  # chance of mixing background noise into a training clip
    snr_db_range: tuple[float, ...] = (0.0, 25.0)  # noise is mixed at a random SNR in this range (dB)
    volume_range: tuple[float, ...] = (0.3, 1.5)  # random gain; real microphones differ a lot in level
    speed_range: tuple[float, ...] = (1.0, 1.0)  # random speed factor (resampling); (1, 1) disables
    reverb_probability: float = 0.0  # chance of convolving a clip with a synthetic room response (dry eSpeak -> room)
    rt60_range: tuple[float, ...] = (0.1, 0.6)  # reverberation time (s, 60 dB decay) of those room responses
    lowpass_probability: float = 0.5  # chance of band-limiting a training clip (speech and noise) at a cutoff drawn from lowpass_hz_range, as 8 kHz audio (telephones, FSDD) holds nothing above 4 kHz
    lowpass_hz_range: tuple[float, ...] = (3000.0, 4000.0)  # cutoffs (Hz, low, high) of that band-limiting
    # streaming only: each training clip comes after this many random training clips (label: the
    # last one), so the recurrent state learns to let go of earlier words and the step model can run
    # on a live stream without resets (continuous recall 0.93 / 0.87 against 0.25, 2 seeds; docs/results.md)
    prefix_clips: int = 0
    # vocal-tract-length perturbation: each training clip's frequency axis scaled by a random factor
    # in [1 - freq_warp, 1 + freq_warp] (apps.speech.features.FrequencyWarp); 0 disables
    freq_warp: float = 0.0
    # chance of mixing a random stretch of the real keyword-free speech of data.unknown_audio under a
    # training clip (all classes but _silence_) at an SNR (dB) in speech_noise_snr_db_range, so real
    # voices are heard in keyword clips too and "sounds like a real recording" cannot mean _unknown_
    speech_noise_probability: float = added_field(0.0, since="2026-12-06")
    speech_noise_snr_db_range: tuple[float, ...] = added_field((5.0, 20.0), since="2026-12-06")
    freq_masks: int = 2  # SpecAugment frequency masks per example
    freq_mask_width: int = 6  # maximum width of each frequency mask (bins)
    time_masks: int = 2  # SpecAugment time masks per example
    time_mask_width: int = 10  # maximum width of each time mask (frames)

    def __post_init__(self):
        rt60 = tuple(self.rt60_range)
        checks = [("noise_probability", 0.0 <= self.noise_probability <= 1.0, "in [0, 1]"),
                  ("reverb_probability", 0.0 <= self.reverb_probability <= 1.0, "in [0, 1]"),
                  ("speech_noise_probability", 0.0 <= self.speech_noise_probability <= 1.0, "in [0, 1]"),
                  ("speech_noise_snr_db_range", len(tuple(self.speech_noise_snr_db_range)) == 2
                   and tuple(self.speech_noise_snr_db_range)[0] <= tuple(self.speech_noise_snr_db_range)[1],
                   "two SNRs in dB (low, high) with low <= high"),
                  ("prefix_clips", self.prefix_clips >= 0, ">= 0 (0 disables)"),
                  ("freq_warp", 0.0 <= self.freq_warp < 0.5, "in [0, 0.5) (0 disables)"),
                  ("lowpass_probability", 0.0 <= self.lowpass_probability <= 1.0, "in [0, 1]"),
                  ("lowpass_hz_range", len(tuple(self.lowpass_hz_range)) == 2
                   and 100.0 <= tuple(self.lowpass_hz_range)[0] <= tuple(self.lowpass_hz_range)[1],
                   "two cutoffs in Hz (low, high) with 100 <= low <= high"),
                  ("rt60_range", len(rt60) == 2 and 0.0 < rt60[0] <= rt60[1] <= 3.0,
                   "two seconds (low, high) with 0 < low <= high <= 3")]
        check_fields(self, "augment", checks)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    architecture: Literal["crnn", "attention_rnn", "streaming"] = "crnn"  # streaming = unidirectional, exportable as a step model
    cell: Literal["lstm", "gru"] = "gru"  # GRU is ~25% cheaper than LSTM with similar accuracy here
    units: tuple[int, ...] = (64,)  # recurrent units per layer
    bidirectional: bool = True  # crnn/attention_rnn only; streaming is always unidirectional
    conv_filters: tuple[int, ...] = (16, 32)  # crnn conv blocks (each halves time and frequency)
    attention_units: int = 64  # width of the attention-pooling scorer
    dense_units: int = 64  # width of the per-frame projection (streaming) / head (attention_rnn)
    dropout_rate: float = 0.2  # dropout before the classifier and between recurrent layers
    streaming_chunk_frames: int = 10  # frames per streaming step (10 = 100 ms of audio)
    # streaming: "last" reads the last recurrent step; "attention" pools every step so far with
    # attention (an online softmax whose running sums the step model carries as state)
    streaming_readout: Literal["last", "attention"] = "last"
    rnn_implementation: Literal["native", "scan"] = "native"  # scan: common.layers.ScanLSTM/ScanGRU, same weights and results; 1.4-2.8x faster GPU fit than native at 128-512 units (H200 bench), but every input shape compiles longer (first epoch 2-3x with length buckets) and it is slower on CPU
    scan_unroll: int = 8  # time steps per loop iteration when rnn_implementation=scan
    # Domain-adversarial training (Ganin & Lempitsky 2015): a head that tells synthetic from real
    # (data.adapt_audio) clips through a gradient-reversal layer of this weight, so the pooled
    # features carry little of what separates eSpeak from real voices. 0 disables; train-time only.
    domain_weight: float = added_field(0.0, since="2026-12-06")
    domain_units: int = added_field(64, since="2026-12-06")  # width of that domain head

    def __post_init__(self):
        units, filters = tuple(self.units), tuple(self.conv_filters)
        check_fields(self, "model", [
            ("units", len(units) > 0 and min(units) >= 1, "a non-empty tuple of positive layer widths, e.g. (64,)"),
            ("conv_filters", min(filters, default=1) >= 1, "positive filter counts, e.g. (16, 32)"),
            ("attention_units", self.attention_units >= 1, ">= 1"), ("dense_units", self.dense_units >= 1, ">= 1"),
            ("dropout_rate", 0.0 <= self.dropout_rate < 1.0, "in [0, 1)"),
            ("streaming_chunk_frames", self.streaming_chunk_frames >= 1, ">= 1"),
            ("scan_unroll", self.scan_unroll >= 1, ">= 1 (time steps per loop iteration)"),
            ("domain_weight", self.domain_weight >= 0.0, ">= 0 (0 disables domain-adversarial training)"),
            ("domain_units", self.domain_units >= 1, ">= 1")])


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig(epochs=14, batch_size=64, learning_rate=3e-3, warmup_epochs=0.5,
                                     early_stopping_patience=0)


# Tests: ~20 s on 2 CPU cores, trained long enough that its test accuracy (0.56 on 34 clips, seeds 0
# and 1) separates a model that learns from the majority class (0.24).
_TINY = Config(
    data=DataConfig(synthetic_speakers=20, synthetic_repeats=2, synthetic_unknown_per_speaker=3,
                    synthetic_silence_clips=12, words=("yes", "no", "up"), validation_percent=20.0,
                    testing_percent=20.0, clip_seconds=0.5),
    features=FeatureConfig(num_mel_bins=16, fft_length=512),
    model=ModelConfig(units=(16,), conv_filters=(8,), attention_units=8, dense_units=16, dropout_rate=0.0),
    train=TrainConfig(epochs=12, batch_size=16, learning_rate=1e-2),
)

# The presets that train from synthesis voice their speakers with eSpeak NG, SVOX Pico and MBROLA in turn:
# a model of one engine scores 0.76 (eSpeak -> Pico) and 0.59 (Pico -> eSpeak) on another engine's
# unseen speakers (digits, docs/results.md "A second synthesis engine"); eSpeak + Pico left the FSDD
# proxy unchanged (0.656 vs 0.660, 3 seeds), adding MBROLA's real-voice diphones raised it to 0.703
# (every seed up; "A third engine: MBROLA"). `tiny` stays eSpeak-only (tests fetch nothing).
PRESET_ENGINES = ("espeak", "pico", "mbrola")
# ...and with 200 synthetic speakers rather than DataConfig's 100: on the FSDD proxy 0.734 over 5 seeds
# against 0.696, and every engine's unseen speakers better recognised (MBROLA 0.953 -> 0.981;
# docs/results.md "MBROLA's us1 is a woman's voice"). It doubles synthesis and training time.
PRESET_SPEAKERS = 200

PRESETS = {
    "tiny": _TINY,
    "default": Config(data=DataConfig(synthetic_engines=PRESET_ENGINES, synthetic_speakers=PRESET_SPEAKERS)),
    # Measured on GPUs (docs/results.md), both before Pico joined the presets (eSpeak NG only): on an
    # H200 (2026-11-26, sharing it with three other trainings) this CRNN reached 0.984 test accuracy
    # in 23 epochs; on an H100 the attention_rnn variant stopped at 0.871 test after 20 epochs.
    "gpu": Config(
        data=DataConfig(synthetic_speakers=400, synthetic_repeats=4, synthetic_unknown_per_speaker=20,
                        synthetic_silence_clips=1000, synthetic_engines=PRESET_ENGINES),
        model=ModelConfig(architecture="crnn", cell="gru", units=(128,), conv_filters=(32, 64)),
        augment=AugmentConfig(speed_range=(0.9, 1.1)),
        train=TrainConfig(epochs=25, batch_size=128, learning_rate=3e-3, warmup_epochs=1.0,
                          early_stopping_patience=8, time_budget_minutes=8.0),
    ),
    # The real-data check: Free Spoken Digit Dataset, official split (recordings 0-4 test).
    "fsdd": Config(
        data=DataConfig(source="fsdd", words=DIGIT_LABELS, include_silence=False, include_unknown=False),
        # One recording set-up: mean normalisation gave 0.990 test / 0.766 leave-one-speaker-out against 0.993 / 0.770.
        features=FeatureConfig(clip_mean_norm="off"),
        augment=AugmentConfig(noise_probability=0.5, snr_db_range=(10.0, 30.0), volume_range=(0.5, 1.5)),
        train=TrainConfig(epochs=20, batch_size=64, learning_rate=3e-3, warmup_epochs=0.5),
    ),
    # The sim->real development proxy: the default recipe (synthetic speech of the three engines only) on the ten
    # digits, scored on FSDD's 3,000 real recordings, which evaluate maps to the digit words:
    #   evaluate --run-dir RUN --data ../shared/data/speech/fsdd.tar.xz --split all --keywords-only
    "synthetic-digits": Config(data=DataConfig(words=DIGIT_WORDS, synthetic_engines=PRESET_ENGINES,
                                               synthetic_speakers=PRESET_SPEAKERS)),
}
