# Two commands do everything on a fresh machine (idempotent; re-running skips finished set-up):
#   make demo   - system packages + virtualenv + project, then the offline demo cycle
#   make test   - the same set-up, then lint (ruff), type check (mypy) and the full test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SYSTEM_PACKAGES := espeak-ng flite festival festvox-us-slt-hts festvox-kallpc16k sox libsndfile1 chromium postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck setup system-deps clean

demo: setup
	$(BIN)/flywheel demo

test: setup
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

# mypy on asr_flywheel + asr_flywheel.plugins ([tool.mypy] in pyproject.toml). The repository keeps plugins/ at the top
# but installs it as asr_flywheel.plugins (package-dir), which mypy cannot see through the editable install's import
# hook; so it checks a tree of symlinks laid out as installed.
TYPECHECK_TREE := build/typecheck
typecheck: setup
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)/asr_flywheel
	ln -s $(CURDIR)/asr_flywheel/* $(TYPECHECK_TREE)/asr_flywheel/
	ln -s $(CURDIR)/plugins $(TYPECHECK_TREE)/asr_flywheel/plugins
	cd $(TYPECHECK_TREE) && $(abspath $(BIN))/mypy --config-file $(CURDIR)/pyproject.toml

setup: system-deps $(VENV)/.installed

system-deps:
	@missing=""; \
	for cmd in espeak-ng flite festival sox chromium; do command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$cmd"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	ls -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts /usr/share/festival/voices/english/kal_diphone >/dev/null 2>&1 || missing="$$missing festvox"; \
	[ -f /usr/include/sndfile.h ] || ldconfig -p 2>/dev/null | grep -q libsndfile || missing="$$missing libsndfile1"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES); \
	fi

# torch first, pinned to the local CPU wheel: an unpinned torch (asked for by NeMo) pulls GBs of CUDA.
$(VENV)/.installed: pyproject.toml constraints.txt tests/example_plugin/pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[all]' -e tests/example_plugin
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
