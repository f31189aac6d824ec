# One install path: .venv, the pinned CPU-friendly torch first, then the project with every extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Optional CityFlow simulator: a wheel built by `make cityflow` (or one placed in WHEELS) is installed when present.
WHEELS ?= ../shared/wheels
CITYFLOW_WHEELS := $(wildcard $(WHEELS)/cityflow-*.whl)
CITYFLOW_BUILD := build/cityflow

.PHONY: install demo test bench lint clean cityflow toolchain

$(STAMP): pyproject.toml $(CITYFLOW_WHEELS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all,dev]"
	$(if $(CITYFLOW_WHEELS),$(PY) -m pip install --quiet --no-index --find-links $(WHEELS) cityflow)
	touch $(STAMP)

install: $(STAMP)

# main job on built-in defaults: train ILC-SAN + TD3 on InvertedPendulum-v5 (resumes if interrupted), then evaluate
demo: install
	@if [ -f runs/quickstart/DONE ]; then echo "runs/quickstart is already trained"; \
	elif [ -f runs/quickstart/checkpoints/LATEST ]; then $(PY) train_agent.py train --resume runs/quickstart; \
	else rm -rf runs/quickstart && $(PY) train_agent.py train --config experiments/quickstart.yaml --run-dir runs/quickstart; fi
	$(PY) train_agent.py eval runs/quickstart --episodes 5

test: install toolchain
	$(PY) -m pytest -q

# ARM toolchain + QEMU for the Cortex-M4 firmware test (tests/test_firmware.py): Debian packages, installed only
# when arm-none-eabi-gcc or qemu-system-arm is missing (needs root and apt-get; otherwise says what to install).
ARM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
toolchain:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(ARM_PACKAGES)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(ARM_PACKAGES) >/dev/null; } \
	  || echo "toolchain: apt-get install $(ARM_PACKAGES) failed (the firmware test skips, fails under CI=true)" >&2; \
	else echo "toolchain: arm-none-eabi-gcc/qemu-system-arm missing and apt-get as root unavailable;" \
	  "install $(ARM_PACKAGES) (the firmware test skips without them, fails under CI=true)" >&2; fi

bench: install
	$(PY) -m experiments.bench

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# Build the CityFlow wheel from a clone (with its extern/rapidjson submodule) for this Python and install it:
#   make cityflow CITYFLOW_SRC=path/to/CityFlow
# The clone is copied to build/cityflow/src and patched there: CMake >= 3.15, pybind11 from pip instead of the
# pinned submodule (which does not build for Python >= 3.11). The wheel lands in build/cityflow/wheel.
cityflow: install
	@test -n "$(CITYFLOW_SRC)" || { echo "usage: make cityflow CITYFLOW_SRC=path/to/CityFlow" >&2; exit 2; }
	@test -f "$(CITYFLOW_SRC)/CMakeLists.txt" || { echo "$(CITYFLOW_SRC): not a CityFlow clone (no CMakeLists.txt)" >&2; exit 2; }
	@test -d "$(CITYFLOW_SRC)/extern/rapidjson/include" || { echo "$(CITYFLOW_SRC)/extern/rapidjson is empty: run git submodule update --init extern/rapidjson" >&2; exit 2; }
	rm -rf $(CITYFLOW_BUILD) && mkdir -p $(CITYFLOW_BUILD)/src $(CITYFLOW_BUILD)/wheel
	cp -r "$(CITYFLOW_SRC)"/. $(CITYFLOW_BUILD)/src/ && rm -rf $(CITYFLOW_BUILD)/src/build
	sed -i -e 's/cmake_minimum_required *( *VERSION [0-9.]* *)/cmake_minimum_required(VERSION 3.15)/' \
	  -e '/"extern\/pybind11\/CMakeLists.txt"/d' \
	  -e 's/add_subdirectory *( *extern\/pybind11 *)/find_package(pybind11 CONFIG REQUIRED)/' $(CITYFLOW_BUILD)/src/CMakeLists.txt
	$(PY) -m pip install --quiet cmake pybind11 setuptools wheel
	CMAKE_PREFIX_PATH="$$($(PY) -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
	  $(PY) -m pip wheel --quiet --no-build-isolation --no-deps $(CITYFLOW_BUILD)/src -w $(CITYFLOW_BUILD)/wheel
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(CITYFLOW_BUILD)/wheel/cityflow-*.whl
	$(PY) -c "import cityflow; print('cityflow installed:', cityflow.__file__)"

clean:
	rm -rf $(VENV) runs .pytest_cache
