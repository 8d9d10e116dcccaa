VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test typecheck reliability mutation demo lint bench screenshots clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test,bench]'
	touch $@

# Four workers: the suite mostly waits on loopback servers and console timers, so they
# overlap on two cores (about 5 min instead of 15). `make reliability` runs serially,
# since it prints the figures the workers would each keep to themselves.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(MAKE) typecheck
	$(PY) -m pytest -q -n 4

# mypy over sync, storage and console, by the names they are installed under
# (rostersync.sync, ...): mypy cannot follow the editable install's import hook, so it
# reads the checkout through a link named rostersync.
typecheck: $(VENV)/.installed
	mkdir -p .mypy_cache/namespace
	ln -sfn ../.. .mypy_cache/namespace/rostersync
	$(VENV)/bin/mypy

# The reliability suites in full (many crash trials, every fault, more examples); the
# figures in docs/reliability.md come from this command's closing summary.
reliability: $(VENV)/.installed
	ROSTERSYNC_RELIABILITY=full $(PY) -m pytest -q -m reliability tests/reliability tests/test_security.py tests/test_security_hardening.py tests/test_webhook_hardening.py \
		tests/test_audit_attacks.py tests/test_audit_key.py tests/test_audit_actor.py

# Mutation testing of the decision modules (guards, grace, lifecycle, breaker, retry,
# audience rules, feed conflicts): the score per module and every surviving mutant that
# docs/testing.md does not list as equivalent. About nine minutes on 2 cores.
mutation: $(VENV)/.installed
	$(PIP) install -q -e '.[mutation]'
	$(PY) -m tests.mutation

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
	$(PY) -m bench.apply --ops 5000 --concurrency 8 --bulk
	$(PY) -m bench.moodle --people 2000 --batch-size 100 --concurrency 4
	$(PY) -m bench.console
	$(PY) -m bench.latency --people 2000 --terminations 200
	$(PY) -m bench.hostile --mib 256 --cap-mib 16 --drip-bytes 200 --drip-ms 20
	$(PY) -m bench.expressions --people 20000

screenshots: $(VENV)/.installed
	$(PY) -m tests.screenshots --out screenshots
	$(PY) -m tests.report_screenshot --out screenshots  # HTML reports; skips without Chromium

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache mutants .mutation
