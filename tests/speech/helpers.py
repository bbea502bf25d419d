"""Helpers shared by the speech tests: a fake FSDD folder, the check that a bad training setting
is refused in one line before anything is written, and the skip marker for fetched engines."""

import importlib

import numpy as np
import pytest
import soundfile as sf


def needs_engine(module: str, name: str, **what):
    """A skip marker for tests that synthesise with an engine fetched as Debian packages
    (apps.speech.<module>; `what` goes to its installed()): they run when `make setup` fetched it,
    and never download."""
    installed = importlib.import_module(f"apps.speech.{module}").installed(**what)
    return pytest.mark.skipif(not installed, reason=f"{name} not fetched (make {module})")


def fake_fsdd(root, speakers, sample_rate=8000):
    """`{digit}_{speaker}_0.wav` for digits 0-2 of each speaker: a tone per speaker and digit, faint noise."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    for s, speaker in enumerate(speakers):
        for digit in range(3):
            tone = 0.3 * np.sin(2 * np.pi * (200 + 40 * s + 30 * digit) * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(root / f"{digit}_{speaker}_0.wav", tone.astype(np.float32), sample_rate)
    return root


def assert_tiny_training_refuses(train, tmp_path, capsys, settings, *names):
    """Each list of `--set` items in `settings` makes the tiny preset exit 2 with one error line that names
    one of `names`, and leaves no run dir."""
    capsys.readouterr()
    for sets in settings:
        target = tmp_path / "bad"
        args = ["--config", "tiny", "--run-dir", str(target)]
        for s in sets:
            args += ["--set", s]
        assert train.main(args) == 2, sets
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and any(name in err[0] for name in names), err
        assert not target.exists()
