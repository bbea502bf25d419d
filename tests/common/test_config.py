import dataclasses
import json

import pytest

from common.config import ConfigError, apply_overrides, build_parser, from_dict, load_config, resolve_config, save_config, to_dict
from common.training import TrainConfig

pytestmark = pytest.mark.one_backend  # parsing and dataclasses: no backend involved


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # test field
    units: tuple[int, ...] = (8,)  # test field
    dropout_rate: float = 0.0  # test field
    bidirectional: bool = False  # test field
    attention: str | None = None  # test field


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()


PRESETS = {"tiny": Config(model=ModelConfig(units=(2,))), "default": Config()}


def test_overrides_are_typed():
    cfg = apply_overrides(Config(), ["model.units=(64,64)", "model.dropout_rate=1", "model.bidirectional=true",
                                     "train.epochs=3", "model.cell=gru", "train.optimizer=adam"])
    assert cfg.model.units == (64, 64)
    assert cfg.model.dropout_rate == 1.0 and isinstance(cfg.model.dropout_rate, float)
    assert cfg.model.bidirectional is True
    assert cfg.train.epochs == 3 and cfg.model.cell == "gru" and cfg.train.optimizer == "adam"
    assert apply_overrides(Config(), ["model.units=32"]).model.units == (32,)
    assert apply_overrides(Config(), ["model.attention=none"]).model.attention is None
    assert apply_overrides(Config(), ["model.attention=bahdanau"]).model.attention == "bahdanau"


@pytest.mark.parametrize("assignment, match", [
    ("model.unitz=3", "unknown config key 'unitz'.*valid keys: cell, units"),
    ("optim.lr=3", "unknown config key 'optim'"),
    ("model.units=abc", "model.units: expected"),
    ("train.epochs=2.5", "train.epochs: expected an integer"),
    ("model.bidirectional=3", "expected true/false"),
    ("train.optimizer=rmsprop", "not one of"),
    ("model=3", "is a section"),
    ("model.units", "key=value"),
])
def test_bad_overrides_name_the_problem(assignment, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Config(), [assignment])


def test_presets_and_round_trip(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'; choose one of: tiny, default"):
        resolve_config(PRESETS, "huge")
    cfg = resolve_config(PRESETS, "tiny", ["train.epochs=2"])
    save_config(cfg, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["model"]["units"] == [2]
    assert load_config(Config, tmp_path / "config.json") == cfg
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(Config, {**to_dict(cfg), "extra": 1})
    with pytest.raises(ConfigError, match="not found"):
        load_config(Config, tmp_path / "missing.json")
    # A run dir from before a field existed names the field and says why it may be missing.
    old = to_dict(cfg)
    del old["train"]["epochs"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match=r"\['train.epochs'\] missing.*older version of the suite"):
        load_config(Config, tmp_path / "old.json")
    (tmp_path / "foreign.json").write_text(json.dumps({**to_dict(cfg), "extra": 1}))
    with pytest.raises(ConfigError, match="damaged or from another app"):
        load_config(Config, tmp_path / "foreign.json")


def test_parser_flags():
    args = build_parser("x", PRESETS).parse_args(["--config", "tiny", "--set", "a=1", "--set", "b=2", "--run-dir", "r"])
    assert (args.config, args.set, args.run_dir) == ("tiny", ["a=1", "b=2"], "r")


def test_none_text_stays_a_string_where_the_field_takes_strings():
    # `Literal["none", ...]` fields: the bare word none is the option "none", not Python None.
    cfg = apply_overrides(Config(), ["train.lr_scaling=none", "train.distribution=none", "model.cell=none"])
    assert cfg.train.lr_scaling == "none" and cfg.train.distribution == "none" and cfg.model.cell == "none"
    assert resolve_config(PRESETS, "tiny", ["train.lr_scaling=sqrt"]).train.lr_scaling == "sqrt"
    # A field that admits None still reads none/null as None, and other text as a string.
    assert apply_overrides(Config(), ["model.attention=null"]).model.attention is None
    assert apply_overrides(Config(), ["model.attention=123"]).model.attention == "123"
    with pytest.raises(ConfigError, match="train.lr_scaling: None is not one of"):
        apply_overrides(Config(), ["train.lr_scaling=None"])


def test_a_field_added_later_loads_older_run_dirs_with_its_default(tmp_path):
    from common.config import added_field

    @dataclasses.dataclass(frozen=True)
    class Later:
        units: int = 4  # test field
        gain: float = added_field(0.0, since="2026-12-06")  # test field

    (tmp_path / "old.json").write_text(json.dumps({"units": 8}))
    assert load_config(Later, tmp_path / "old.json") == Later(units=8, gain=0.0)
    (tmp_path / "new.json").write_text(json.dumps({"units": 8, "gain": 0.5}))
    assert load_config(Later, tmp_path / "new.json").gain == 0.5
    (tmp_path / "broken.json").write_text(json.dumps({"gain": 0.5}))  # an original field is still required
    with pytest.raises(ConfigError, match=r"\['units'\] missing"):
        load_config(Later, tmp_path / "broken.json")
