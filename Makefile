# asgt: two commands do everything on a fresh machine (see README):
#   make book    the main job: the quick batch (cached) and the Jupyter Book in _build/html
#   make test    the test suite (unit tests, torchattacks comparisons, nbval, book build)
PYTHON  ?= python3.11
VENV    ?= .venv
PRESET  ?= quick
JOBS    ?= 2
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test book batch smoke bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[test]"
	# torchattacks pins requests~=2.25.1 that it never imports; its real needs (torch, numpy, scipy) are installed.
	$(BIN)/pip install --quiet --no-deps torchattacks==3.5.1
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs tests

book: $(STAMP)
	$(BIN)/asgt book --preset $(PRESET) --jobs $(JOBS) $(if $(filter 1,$(COMPUTE)),--compute) \
		$(if $(filter 0,$(BATCH)),--no-batch)

batch: $(STAMP)
	$(BIN)/asgt batch --preset $(PRESET) --jobs $(JOBS)

smoke: $(STAMP)
	$(BIN)/asgt batch --preset smoke --jobs $(JOBS)

bench: $(STAMP)
	$(BIN)/python bench/step_cost.py
	$(BIN)/python bench/sweep.py --dataset mnist --method st --preset quick

clean:
	rm -rf _build
