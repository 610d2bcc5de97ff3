# asgt: two commands do everything on a fresh machine (see README):
#   make book    the main job: the Jupyter Book in _build/html from the committed `reference` results
#                (PRESET=quick rebuilds everything from nothing in about 30 minutes)
#   make test    the test suite (unit tests, torchattacks comparisons, nbval, book build)
PYTHON  ?= python3.11
VENV    ?= .venv
PRESET  ?= reference
JOBS    ?= 2
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test book batch smoke pages bench clean

# torch 2.14.1 is a CUDA build: with its libraries it takes about 5.6 GB in the venv.
NEED_GB := 7

$(STAMP): pyproject.toml
	@if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  mkdir -p $(VENV); free=$$(df -Pk $(VENV) | awk 'NR==2 {print int($$4 / 1048576)}'); \
	  if [ "$$free" -lt $(NEED_GB) ]; then \
	    echo "make: installing torch into $(VENV) needs about $(NEED_GB) GB of free disk, and only $$free GB is free there." >&2; \
	    echo "      Free some space (old virtual environments or clones of this project) and run make again." >&2; \
	    exit 1; fi; fi
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

# the smoke results the pages' stored outputs come from (tests/fixtures/page-results), recomputed, and the pages
# re-executed against them: after a change of what the smoke runs or their audit compute
pages: $(STAMP)
	$(BIN)/python -c "from asgt_lib.report.book import refresh_page_fixture; refresh_page_fixture()"

bench: $(STAMP)
	$(BIN)/python bench/step_cost.py
	$(BIN)/python bench/sweep.py --dataset mnist --method st --preset quick

clean:
	rm -rf _build
