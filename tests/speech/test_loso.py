"""apps.speech.loso reuses finished folds only when they were trained with the settings asked for."""

import json

from apps.speech import loso
from apps.speech.config import PRESETS
from common.config import resolve_config, save_config


def _fake_fold(root, speaker, accuracy, sets=()):
    run = root / speaker
    run.mkdir(parents=True)
    save_config(resolve_config(PRESETS, "fsdd", list(sets) + [f"data.test_speaker={speaker}"]), run / "config.json")
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))


def test_finished_folds_are_reused_and_averaged(tmp_path):
    _fake_fold(tmp_path, "george", 0.8, ["train.epochs=3"])
    _fake_fold(tmp_path, "theo", 0.6, ["train.epochs=3"])
    code = loso.main(["--run-root", str(tmp_path), "--speakers", "george,theo", "--set", "train.epochs=3"])
    assert code == 0
    summary = json.loads((tmp_path / "loso.json").read_text())
    assert summary["folds"] == {"george": 0.8, "theo": 0.6}
    assert abs(summary["mean_test_accuracy"] - 0.7) < 1e-9
    assert summary["overrides"] == ["train.epochs=3"]


def test_a_fold_from_other_settings_is_refused_not_mixed_in(tmp_path, capsys):
    _fake_fold(tmp_path, "george", 0.8)  # the preset's own epochs
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = loso.main(["--run-root", str(tmp_path), "--speakers", "george", "--set", "train.epochs=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.epochs" in err and "--run-root" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, nothing trained


def test_bad_setting_fails_before_training(tmp_path, capsys):
    code = loso.main(["--run-root", str(tmp_path / "new"), "--set", "train.epochz=3"])
    assert code == 2
    assert "epochz" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
