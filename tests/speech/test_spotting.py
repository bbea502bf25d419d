"""Keyword spotting logic (apps/speech/spotting.py) on hand-made posteriors and streams: no model needed."""

import numpy as np
import pytest

from apps.speech.spotting import (SpotSettings, check_spottable, detect, make_streams, score_detections,
                                  window_posteriors)

LABELS = ["yes", "no", "_silence_", "_unknown_"]


def _posteriors(frames, events):
    """`[frames, 4]` posteriors: silence everywhere, and `(label index, first, last, p)` bumps."""
    p = np.zeros((frames, 4))
    p[:, 2] = 1.0
    for k, first, last, prob in events:
        p[first:last + 1] = (1 - prob) / 3
        p[first:last + 1, k] = prob
    return p


def test_detect_finds_each_word_once_and_ignores_weak_or_non_keyword_peaks():
    times = np.arange(100) * 0.1
    p = _posteriors(100, [(0, 10, 16, 0.95), (1, 40, 46, 0.9), (0, 70, 71, 0.5), (3, 85, 92, 0.99)])
    found = detect(times, p, LABELS, SpotSettings(threshold=0.6, smooth_windows=1, refractory_seconds=0.8))
    assert [(d["label"], round(d["time"], 1)) for d in found] == [("yes", 1.0), ("no", 4.0)]  # weak yes, _unknown_: none
    assert all(d["probability"] >= 0.6 for d in found)
    # Averaging 5 windows removes a one-window blip that the raw posteriors would report.
    blip = _posteriors(100, [(1, 50, 50, 0.99)])
    assert detect(times, blip, LABELS, SpotSettings(smooth_windows=1)) and not detect(times, blip, LABELS, SpotSettings())
    # Two peaks closer than the refractory period give one detection; farther apart, two.
    twin = _posteriors(100, [(0, 10, 12, 0.9), (0, 15, 17, 0.95)])
    assert len(detect(times, twin, LABELS, SpotSettings(smooth_windows=1, refractory_seconds=0.8))) == 1
    assert len(detect(times, twin, LABELS, SpotSettings(smooth_windows=1, refractory_seconds=0.2))) == 2


def test_streams_and_scoring():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, (5, 8000)).astype("float32")
    labels = np.array([0, 1, 0, 3, 1])
    streams = make_streams(audio, labels, LABELS, 8000, clips_per_stream=3, gap_seconds=(0.5, 0.5))
    assert [len(truth) for _, truth in streams] == [3, 2]
    audio0, truth = streams[0]
    assert len(audio0) == 8000 * (3 * 1.5 + 0.5)  # gaps before each clip and one at the end
    assert truth[0]["start"] == 0.5 and truth[0]["end"] == 1.5 and truth[1]["start"] == 2.0
    assert sorted(e["label"] for _, t in streams for e in t) == sorted(LABELS[i] for i in labels)
    mid = lambda e: (e["start"] + e["end"]) / 2  # noqa: E731
    perfect = [{"time": mid(e), "label": e["label"], "probability": 1.0} for e in truth if e["label"] != "_unknown_"]
    keywords = sum(e["label"] != "_unknown_" for e in truth)
    assert score_detections(perfect, truth) == {"keywords": keywords, "detections": keywords, "hits": keywords,
                                                "misses": 0, "false_alarms": 0, "wrong_label": 0}
    wrong = {"time": mid(truth[0]), "label": "no" if truth[0]["label"] == "yes" else "yes", "probability": 1.0}
    gap = {"time": 0.1, "label": "yes", "probability": 1.0}
    scored = score_detections(perfect + [perfect[0], wrong, gap], truth)  # a duplicate, a wrong label, one in a pause
    assert scored["hits"] == keywords and scored["false_alarms"] == 3 and scored["wrong_label"] == 1


class _EnergyModel:
    """Stands in for a Keras classifier: 'yes' when the window is loud, else silence."""

    def __call__(self, audio, training=False):
        loud = (np.abs(audio) > 0.25).mean(axis=1).astype("float32")  # the loud fraction of the window
        return np.stack([loud, 0 * loud, 1 - loud, 0 * loud], axis=1)


def test_window_posteriors_cover_the_file_and_locate_a_loud_word():
    audio = np.zeros(8000 * 5, "float32")
    audio[8000 * 2:8000 * 3] = 0.5  # one loud second at 2-3 s
    times, p = window_posteriors(_EnergyModel(), audio, 8000, 8000, 0.25, batch_size=3)
    assert times[0] == 0.5 and times[-1] == 4.5 and len(times) == 17
    found = detect(times, p, LABELS, SpotSettings(smooth_windows=1))
    assert [d["label"] for d in found] == ["yes"] and 2.0 <= found[0]["time"] <= 3.0
    short_times, short = window_posteriors(_EnergyModel(), audio[:100], 8000, 8000, 0.25)  # shorter than a clip: padded
    assert len(short_times) == 1 and short.shape == (1, 4)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        SpotSettings(threshold=0)
    with pytest.raises(ValueError, match="hop_seconds"):
        SpotSettings(hop_seconds=0)
    with pytest.raises(ValueError, match="include_silence=true"):
        check_spottable(["0", "1", "2"])  # e.g. the fsdd preset: no class for the pauses
    check_spottable(LABELS)


def test_staggered_step_model_gives_the_full_model_on_each_window():
    import dataclasses

    from apps.speech.config import PRESETS
    from apps.speech.model import adapt_normalization, build_model
    from apps.speech.spotting import staggered_step_posteriors

    cfg = PRESETS["tiny"]
    model = build_model(dataclasses.replace(cfg.model, architecture="streaming", units=(6,)), cfg.features,
                        cfg.augment, num_classes=4, clip_seconds=0.5)  # 8000 samples, 5 chunks of 1600
    audio = np.random.default_rng(1).normal(0, 0.1, 25000).astype("float32")  # 15 chunks and a bit
    adapt_normalization(model, audio[None, :8000])
    times, probs = staggered_step_posteriors(model, audio, chunk_frames=10, phases=5)  # a window every 0.1 s
    ref_times, ref = window_posteriors(model, audio, 16000, 8000, 0.1)
    assert len(times) == 11 and len(ref_times) == 12  # the sliding window adds one window flush with the end
    np.testing.assert_allclose(times, ref_times[:11])
    np.testing.assert_allclose(probs, ref[:11], atol=2e-5)
    with pytest.raises(ValueError, match="must divide"):
        staggered_step_posteriors(model, audio, chunk_frames=10, phases=2)
    # One never-reset state: its first whole clip is the full model's first window; later ones carry on.
    from apps.speech.spotting import live_step_posteriors

    live_times, live = live_step_posteriors(model, audio, chunk_frames=10)
    assert len(live_times) == 15 and live_times[4] == ref_times[0]
    np.testing.assert_allclose(live[4], ref[0], atol=2e-5)
