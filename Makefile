# lstm-suite: every target depends on the venv, so a fresh clone needs no other step.
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN ?= runs
CONFIG ?= default
SET ?=
SETARGS := $(foreach s,$(SET),--set '$(s)')

.PHONY: setup pico mbrola test test-slow train-speech train-sentiment train-translate train-forecast train-lm \
        evaluate-lm export-lm evaluate-speech export-speech evaluate-sentiment export-sentiment evaluate-translate export-translate \
        evaluate-forecast export-forecast bench experiments experiments-long experiments-clipping lock clean

setup: $(STAMP)

# The lock first, then the suite itself as an editable package (the `lstm-suite` command, `import apps`
# from any folder); --no-deps so the lock alone decides every version.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON_SYS) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	@$(PY) -m apps.speech.pico || echo "warning: SVOX Pico was not fetched (above); data.synthetic_engines with pico and its tests need it: make pico"
	@$(PY) -m apps.speech.mbrola || echo "warning: MBROLA was not fetched (above); data.synthetic_engines with mbrola and its tests need it: make mbrola"
	touch $(STAMP)

# SVOX Pico, the speech app's second synthesis engine: two Debian packages fetched once into the cache.
pico: $(STAMP)
	$(PY) -m apps.speech.pico

# MBROLA (diphones of three real US voices), an optional third engine: four Debian packages, 17.6 MB.
mbrola: $(STAMP)
	$(PY) -m apps.speech.mbrola

lock: ## Re-resolve requirements.txt into requirements.lock.
	rm -rf .venv-lock && $(PYTHON_SYS) -m venv .venv-lock && .venv-lock/bin/pip install -q -r requirements.txt
	{ echo "# Full resolved set for Python 3.11 (regenerate: make lock). Top-level pins live in requirements.txt."; .venv-lock/bin/pip freeze; } > requirements.lock
	rm -rf .venv-lock

# Fast suite: TensorFlow backend for everything and, beside it, the shared blocks, the apps' scan
# recurrences and the experiments' compiled loop (JAX-only) under JAX (tools/run_tests.sh).
test: $(STAMP)
	PY=$(PY) bash tools/run_tests.sh

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

train-speech: $(STAMP)
	$(PY) -m apps.speech.train --config $(CONFIG) --run-dir $(RUN)/speech $(SETARGS)

train-sentiment: $(STAMP)
	$(PY) -m apps.nlp.sentiment.train --config $(CONFIG) --run-dir $(RUN)/sentiment $(SETARGS)

train-translate: $(STAMP)
	$(PY) -m apps.nlp.translation.train --config $(CONFIG) --run-dir $(RUN)/translate $(SETARGS)

train-forecast: $(STAMP)
	$(PY) -m apps.timeseries.train --config $(CONFIG) --run-dir $(RUN)/forecast $(SETARGS)

# Word-level language model on WikiText-2 (../shared/data, else downloaded once); JAX trains it ~3x faster on a CPU.
train-lm: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m apps.nlp.language_model.train --config $(CONFIG) --run-dir $(RUN)/lm $(SETARGS)

evaluate-lm: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m apps.nlp.language_model.evaluate --run-dir $(RUN)/lm

export-lm: $(STAMP)
	$(PY) -m apps.nlp.language_model.export --run-dir $(RUN)/lm

evaluate-speech: $(STAMP)
	$(PY) -m apps.speech.evaluate --run-dir $(RUN)/speech

export-speech: $(STAMP)
	$(PY) -m apps.speech.export --run-dir $(RUN)/speech

evaluate-sentiment: $(STAMP)
	$(PY) -m apps.nlp.sentiment.evaluate --run-dir $(RUN)/sentiment

export-sentiment: $(STAMP)
	$(PY) -m apps.nlp.sentiment.export --run-dir $(RUN)/sentiment

evaluate-translate: $(STAMP)
	$(PY) -m apps.nlp.translation.evaluate --run-dir $(RUN)/translate

export-translate: $(STAMP)
	$(PY) -m apps.nlp.translation.export --run-dir $(RUN)/translate

evaluate-forecast: $(STAMP)
	$(PY) -m apps.timeseries.evaluate --run-dir $(RUN)/forecast

export-forecast: $(STAMP)
	$(PY) -m apps.timeseries.export --run-dir $(RUN)/forecast

$(VENV)/.bench-installed: $(STAMP) requirements-bench.txt
	$(VENV)/bin/pip install -q -r requirements-bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) -m bench.rnn_throughput --device cpu --out bench/out/rnn_throughput_cpu.json
	KERAS_BACKEND=jax $(PY) -m bench.callback_sync --out bench/out/callback_sync_cpu.json
	$(PY) -m bench.inference --out bench/out/inference_cpu.json $(foreach r,$(BENCH_RUNS),--run $(r))

# The experiments train through a JAX-compiled loop (apps/experiments/loop.py), so they run on JAX.
experiments: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m apps.experiments.run --config default --run-dir $(RUN)/experiments $(SETARGS)

# T=500 and T=1000 (about an hour on 2 CPU cores; docs/results.md, Experiments).
experiments-long: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m apps.experiments.run --config long --run-dir $(RUN)/experiments-long $(SETARGS)

experiments-clipping: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m apps.experiments.run --config clipping --run-dir $(RUN)/experiments-clipping $(SETARGS)

clean:
	rm -rf $(VENV) .pytest_cache
