# bpnas_mm: `make demo` and `make test` install what is missing first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= work_dirs/demo

.PHONY: setup demo bops-demo test bench clean

setup:
	bash tools/install.sh

demo: setup
	$(PY) tools/run_demo.py --work-root $(DEMO_DIR)

bops-demo: setup
	$(PY) tools/analysis/bops_report.py configs/quant/resnet20_cifar10_mp.py \
	    --json $(DEMO_DIR)/bops_report_resnet20_paper_bmax3.json

test: setup
	$(PY) -m pytest -q tests --doctest-modules bpnas_mm

bench: setup
	$(PY) tools/benchmark/bench_supernet.py

clean:
	rm -rf work_dirs .pytest_cache
