# painformer: `make demo` runs the whole workflow on the demo dataset, `make test` runs the tests.
# Both create the virtual environment .venv first.
#
# TORCH_SPEC is what gets installed for PyTorch before the package. The default is the
# CPU/CUDA build available on this project's build machines; on another machine pick the
# build for your CUDA, e.g. `make demo TORCH_SPEC="torch torchvision"`, or `TORCH_SPEC=`
# to keep what is installed.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
CORES ?= 2
BIN := $(CURDIR)/$(VENV)/bin
RUN := PATH="$(BIN):$$PATH"
SNAKEMAKE := $(RUN) snakemake --workflow-profile workflow/profiles/default --cores $(CORES)

.PHONY: setup demo test report clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(if $(strip $(TORCH_SPEC)),$(BIN)/pip install --quiet $(TORCH_SPEC))
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(SNAKEMAKE)
	$(SNAKEMAKE) --report results/demo/report.html
	@echo "Summary: results/demo/summary.md   Report: results/demo/report.html"

test: setup
	$(RUN) pytest

clean:
	rm -rf results resources .snakemake
