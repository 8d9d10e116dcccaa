VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test reliability demo lint bench screenshots clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test,bench]'
	touch $@

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The reliability suites in full (many crash trials, every fault, more examples); the
# figures in docs/reliability.md come from this command's closing summary.
reliability: $(VENV)/.installed
	ROSTERSYNC_RELIABILITY=full $(PY) -m pytest -q -m reliability tests/reliability tests/test_security.py tests/test_security_hardening.py tests/test_webhook_hardening.py \
		tests/test_audit_attacks.py tests/test_audit_key.py tests/test_audit_actor.py

demo: $(VENV)/.installed
	$(VENV)/bin/rostersync demo

# The code is formatted by hand to ruff's line length (ruff check enforces it); the layers'
# import contract is part of lint as well as of the tests.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests/test_layers.py

bench: $(VENV)/.installed
	$(PY) -m bench.reconcile --people 1000000
	$(PY) -m bench.delta --people 1000000 --changes 1000
	$(PY) -m bench.apply --ops 5000 --concurrency 8
	$(PY) -m bench.console
	$(PY) -m bench.latency --people 2000 --terminations 200

screenshots: $(VENV)/.installed
	$(PY) -m tests.screenshots --out screenshots
	$(PY) -m tests.report_screenshot --out screenshots  # HTML reports; skips without Chromium

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
