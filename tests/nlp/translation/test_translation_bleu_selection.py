"""decode.select_by_bleu: a per-epoch validation BLEU picks the checkpoint (and early stopping)."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from apps.nlp.translation.evaluate import ValidationBLEU
from common.rundir import RunDir
from common.training import TrainConfig, fit, set_seed

PAIRS = [(f"quelle {i}", f"the reference sentence number {i} is here") for i in range(12)]


class ScriptedTranslator:
    """Translates perfectly on its second call only, so epoch 2 has by far the best BLEU."""

    source_tokenizer = SimpleNamespace(lowercase=True)

    def __init__(self):
        self.calls = 0

    def translate(self, sources, beam_size=1):
        self.calls += 1
        references = dict(PAIRS)
        return [SimpleNamespace(text=references[s] if self.calls == 2 else "nothing like it") for s in sources]


def test_checkpoint_follows_validation_bleu(tmp_path):
    set_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([np.array(w) for w in self.model.get_weights()])

    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    bleu = ValidationBLEU(lambda m: ScriptedTranslator(), PAIRS, count=8)
    with RunDir(tmp_path / "run") as run:
        model, history = fit(model, (x, y), (x, y), TrainConfig(epochs=3, batch_size=16, learning_rate=0.1), run,
                             monitor="val_bleu", mode="max", metric_callbacks=[bleu], extra_callbacks=[Snapshot()])
    assert len(bleu.pairs) == 8 and history["val_bleu"][1] == 100.0 and max(history["val_bleu"][::2]) < 5
    # The val_loss keeps falling, yet the kept weights are epoch 2's, the BLEU-best.
    assert history["val_loss"][2] < history["val_loss"][1]
    for kept, best in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(kept, best)


def test_select_by_bleu_needs_one_device_and_a_validation_split():
    from apps.nlp.translation import train

    assert train.main(["--config", "tiny", "--set", "decode.select_by_bleu=5", "--set", "train.distribution=mirrored",
                       "--run-dir", "/nonexistent/never-written"]) == 2
    with pytest.raises(ValueError, match="validation split"):
        ValidationBLEU(lambda m: None, [], count=5)
