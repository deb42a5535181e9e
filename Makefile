# Two targets a fresh machine needs: `make study` (the main job) and `make test`.
# Both create and fill the local virtual environment .venv on first use and reuse it afterwards, with the
# exact versions of constraints.txt (pyproject.toml gives ranges; `make constraints` refreshes the pins).
# `make test-fast` is the inner loop: the suite without the tests marked slow. `make docs` builds the
# documentation site into site/ (MkDocs; the lesson notebook executed, reused from build/docs/ while unchanged).

PYTHON ?= python3
CONSTRAINTS := constraints.txt
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKERS ?= 2
# The data root is always given: `make study DATA_ROOT=/path`, or $FAKD_DATA_ROOT; none: the demo study.
DATA_ROOT ?= $(FAKD_DATA_ROOT)
# With a data root the cpu study (hours); without one the demo study (~10 min on the embedded photographs
# and the shipped teacher). `make study PROFILE=...` picks another.
PROFILE ?= $(if $(DATA_ROOT),cpu,demo)

.PHONY: study test test-fast docs install constraints clean-venv

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --constraint $(CONSTRAINTS) -e '.[notebooks,dev,onnx,docs]' einops
	# spandrel without its torchvision requirement: torchvision does not load beside the CPU torch wheel and
	# fakd never imports it (fakd.models.spandrel_import); the tests load networks through spandrel.
	$(BIN)/pip install --quiet --constraint $(CONSTRAINTS) --no-deps spandrel
	touch $(STAMP)

install: $(STAMP)

study: $(STAMP)
	$(BIN)/fakd study --profile $(PROFILE) --workers $(WORKERS) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

# One torch thread per test worker: two workers share the two cores without oversubscription.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q -m "not slow"

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --clean --site-dir site

# Pin what the working .venv holds (fakd itself left out; torch without a local build label such as
# +cpu, so a CUDA build of the same release also satisfies it): after changing pyproject.toml, install
# into .venv by hand (pip install -e '.[notebooks,dev,docs]'), check, then run this.
constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^fakd' | sed -E 's/^(torch==[0-9.]+)\+.*/\1/' > $(CONSTRAINTS)

clean-venv:
	rm -rf $(VENV)
