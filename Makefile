# make demo  — set up, get Fashion-MNIST, train the fmnist32 DCGAN for ~10 minutes (again: it resumes)
# make demo-faces — draw 50,000 colour faces, train examples64 on them for ~30 minutes (again: it resumes)
# make demo-rooms — draw 50,000 bedrooms, train examples64 ~60 minutes, then the §6 network probes on it
# make test  — set up and run the suite;  make bench — benchmarks;  make lint — ruff
# make fuzz  — 5,000 damaged and hostile files per reader family (~30 min), counts into docs/RELIABILITY.md
# make screenshots — after make demo: the README's report and explorer screenshots, by the suite's browser
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := dataset-fashion-mnist libtcmalloc-minimal4 chromium chromium-driver
TEST_DEBS := wesnoth-1.16-data
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup debs test-debs install-debs demo demo-faces demo-rooms test lint bench fuzz screenshots clean

DEMO_RUN := runs/fmnist32
DEMO_MINUTES ?= 10

setup: $(STAMP) debs

# torch first, pinned: that is the CPU wheel on local disk; an unpinned torch resolves to a 5.5 GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

debs:
	@$(MAKE) --no-print-directory install-debs PACKAGES="$(DEBS)"

# the real Wesnoth sprites for their reader's test (~190 MB installed; `dcgan data sprites` needs them too)
test-debs:
	@$(MAKE) --no-print-directory install-debs PACKAGES="$(TEST_DEBS)"

install-debs:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: setup
	$(BIN)/dcgan data fashion-mnist --out data/fashion-mnist
	$(BIN)/dcgan train data/fashion-mnist/train --preset fmnist32 --out $(DEMO_RUN) --epochs 10 \
	  --max-minutes $(DEMO_MINUTES) --sample-every 200
	$(BIN)/dcgan sample $(DEMO_RUN) --seeds 0-63 --grid $(DEMO_RUN)/final-grid.png
	@echo "open $(DEMO_RUN)/final-grid.png (64 samples), $(DEMO_RUN)/loss.png, $(DEMO_RUN)/samples/ (progress)"

FACES_RUN := runs/faces64
FACES_MINUTES ?= 30

demo-faces: setup
	$(BIN)/dcgan data faces --out data/faces
	$(BIN)/dcgan train data/faces --preset examples64 --out $(FACES_RUN) --epochs 25 \
	  --max-minutes $(FACES_MINUTES) --sample-every 200
	$(BIN)/dcgan sample $(FACES_RUN) --seeds 0-63 --grid $(FACES_RUN)/final-grid.png
	@echo "open $(FACES_RUN)/report.html (the run), $(FACES_RUN)/final-grid.png (64 samples)"

ROOMS_RUN := runs/rooms64
ROOMS_MINUTES ?= 60

demo-rooms: setup
	$(BIN)/dcgan data rooms --out data/rooms
	$(BIN)/dcgan train data/rooms --preset examples64 --out $(ROOMS_RUN) --epochs 25 \
	  --max-minutes $(ROOMS_MINUTES) --sample-every 200
	$(BIN)/dcgan sample $(ROOMS_RUN) --seeds 0-63 --grid $(ROOMS_RUN)/final-grid.png
	$(BIN)/dcgan saliency $(ROOMS_RUN) --dataset data/rooms --out $(ROOMS_RUN)/figures/saliency.png
	$(BIN)/dcgan forget $(ROOMS_RUN) --dataset data/rooms --object window --layer 2 --layer 3 \
	  --out $(ROOMS_RUN)/figures/forget
	$(BIN)/dcgan report $(ROOMS_RUN)
	@echo "open $(ROOMS_RUN)/final-grid.png, $(ROOMS_RUN)/figures/saliency.png, $(ROOMS_RUN)/figures/forget/forget-layer3.png, $(ROOMS_RUN)/report.html"

test: setup test-debs
	$(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

BENCHES := prepare_speed dataset_speed memorization_speed train_throughput cpu_conv_speed cuda_layers_speed explore_latency dedup_speed
FMNIST_DEB := /usr/share/datasets/fashion-mnist

# then the §5 probe at the paper's size (60k × 28,672; ~30 min, ~14 GB) and `evaluate` on the demo run
bench: setup
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done
	@test -d data/fm3/train || $(BIN)/dcgan prepare $(FMNIST_DEB)/train-images-idx3-ubyte.gz data/fm3/train \
	  --size 32 --fit pad --channels 3
	@echo "== bench/probe_speed.py"; $(BIN)/python bench/probe_speed.py data/fm3/train
	@if [ -d $(DEMO_RUN) ]; then echo "== bench/evaluate_speed.py"; $(BIN)/python bench/evaluate_speed.py; \
	else echo "== bench/evaluate_speed.py skipped: run make demo first"; fi

FUZZ_CASES ?= 5000

fuzz: setup
	$(BIN)/python fuzz/campaign.py --per-family $(FUZZ_CASES) --record docs/RELIABILITY.md

screenshots: setup
	@test -f $(DEMO_RUN)/generator.safetensors || { echo "make screenshots: no demo run in $(DEMO_RUN); run make demo first" >&2; exit 2; }
	DCGAN_SCREENSHOTS=docs/images DCGAN_DEMO_RUN=$(DEMO_RUN) $(BIN)/python -m pytest -q \
	  tests/report/test_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
