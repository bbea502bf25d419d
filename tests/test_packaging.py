"""The installed package: its console script, its CLI usage, and imports from outside the project folder.

`make setup` installs the suite editable (`pip install --no-deps -e .`); the tests that need that
install skip when the venv running them does not have it (a GPU machine's bare Python).
"""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOUR_APPS = ("speech", "sentiment", "translation", "forecasting")


def _installed():
    try:
        return importlib.metadata.distribution("lstm-suite")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("lstm-suite is not installed in this venv (make setup runs pip install --no-deps -e .)")


def _outside_env() -> dict:
    """The environment minus anything that would put the project on sys.path by another way."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}


def test_console_script_points_at_the_cli_main():
    dist = _installed()
    assert dist.version == "0.1.0"
    scripts = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert "lstm-suite" in scripts
    assert scripts["lstm-suite"].value == "common.cli:main"
    from common.cli import main

    assert scripts["lstm-suite"].load() is main


def test_cli_help_lists_the_apps_and_commands(capsys):
    from apps import APPS
    from common.cli import COMMANDS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lstm-suite APP COMMAND")
    for name in (*APPS, *FOUR_APPS, "experiments"):
        assert name in out
    for command in COMMANDS:
        assert command in out


def test_cli_without_a_command_or_with_a_wrong_one_is_a_user_error(capsys):
    from common.cli import main

    assert main([]) == 2
    assert "usage: lstm-suite" in capsys.readouterr().out
    assert main(["speech", "fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
    assert main(["nosuchapp", "train"]) == 2
    err = capsys.readouterr().err
    assert "unknown app 'nosuchapp'" in err and "speech" in err


def test_app_train_help_through_the_cli_lists_presets_and_set_keys(capsys):
    from common.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["forecasting", "train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--config", "--set", "--run-dir", "--resume", "--overwrite", "--print-config"):
        assert flag in out
    assert "tiny" in out and "train.epochs (int)" in out and "train.tensorboard (bool)" in out


def test_imports_and_console_script_work_from_another_folder(tmp_path):
    """One process from another folder (importing TensorFlow costs ~5 s a process): the package is this
    project's, then the installed console script's own code runs (`lstm-suite speech`: its usage, exit 2)
    under the interpreter its first line names; the CLI's exit codes themselves are checked in-process above."""
    _installed()
    script = Path(sys.executable).parent / "lstm-suite"
    assert script.exists(), f"{script} missing: the console script was not installed"
    shebang = script.read_text().splitlines()[0]
    assert shebang.startswith("#!") and Path(shebang[2:]).resolve() == Path(sys.executable).resolve(), shebang
    code = ("import runpy, sys\n"
            "import apps.speech, common.pipeline; print(apps.speech.__file__); print(common.pipeline.__file__)\n"
            f"sys.argv = [{str(script)!r}, 'speech']; runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_outside_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])  # usage without a command
    speech_file, pipeline_file = (Path(line) for line in proc.stdout.split()[:2])
    assert speech_file == ROOT / "apps" / "speech" / "__init__.py"
    assert pipeline_file == ROOT / "common" / "pipeline.py"
    assert "usage: lstm-suite APP COMMAND" in proc.stdout, proc.stdout[-2000:]
    assert all(name in proc.stdout for name in FOUR_APPS)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


def _results_checker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_results", ROOT / "tools" / "check_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_ledger_is_well_formed(capsys):
    checker = _results_checker()
    ledger = ROOT / "docs" / "results.jsonl"
    assert checker.main([str(ledger)]) == 0, capsys.readouterr().err
    import json

    rows = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    apps = {row["app"] for row in rows}
    assert {"speech", "sentiment", "translation", "forecasting"} <= apps
    # The README's headline numbers are in it: speech on real clips, SST-2 dev, Multi30k BLEU, ETTh1 MSE.
    def has(app, dataset, split, metric, value):
        return any((r["app"], r["dataset"], r["split"], r["metric"], r["value"]) == (app, dataset, split, metric, value) for r in rows)

    assert has("speech", "speech_commands_v0.01_sample", "core_words", "accuracy", 0.72)
    assert has("sentiment", "sst2", "dev", "accuracy", 0.8819)
    assert has("translation", "multi30k_de_en", "test_2016_flickr", "bleu", 37.92)
    assert has("forecasting", "ETTh1", "test", "mse", 0.3631)


def test_results_checker_names_each_bad_line(tmp_path, capsys):
    checker = _results_checker()
    good = {"app": "speech", "dataset": "fsdd", "split": "test", "metric": "accuracy", "value": 0.99, "seed": 0,
            "setting": "fsdd", "command": None, "machine": "CPU 2 cores", "date": None}
    import json

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(good), json.dumps({**good, "value": 72}), json.dumps({**good, "app": "nlp"}),
                              json.dumps({k: v for k, v in good.items() if k != "seed"}), json.dumps({**good, "date": "3/12/2026"}),
                              "{not json", json.dumps({**good, "length": 1000, "horizon": 96}),
                              json.dumps({**good, "length": "1000"}), json.dumps({**good, "lenght": 1000})]) + "\n",
                   encoding="utf-8")
    assert checker.main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert ":1:" not in err
    assert ":2: accuracy is a fraction" in err
    assert ":3: app 'nlp'" in err
    assert ":4: missing key(s) ['seed']" in err
    assert ":5: date must be YYYY-MM-DD" in err
    assert ":6: not JSON" in err
    assert ":7:" not in err  # the optional integer keys (experiments' T, forecasting's horizon)
    assert ":8: length must be a positive integer" in err
    assert ":9: unknown key(s) ['lenght']" in err
