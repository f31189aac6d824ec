# One install path: .venv, the pinned CPU-friendly torch first, then the project with every extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

# main job on built-in defaults: train ILC-SAN + TD3 on InvertedPendulum-v5 (resumes if interrupted), then evaluate
demo: install
	@if [ -f runs/quickstart/DONE ]; then echo "runs/quickstart is already trained"; \
	elif [ -f runs/quickstart/checkpoints/LATEST ]; then $(PY) train_agent.py train --resume runs/quickstart; \
	else rm -rf runs/quickstart && $(PY) train_agent.py train --config experiments/quickstart.yaml --run-dir runs/quickstart; fi
	$(PY) train_agent.py eval runs/quickstart --episodes 5

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m experiments.bench

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
