# The two commands of the README. Both create/refresh ./.venv first (idempotent:
# under a second when nothing changed; the llama-cpp-python build is cached).
.PHONY: run test setup lint

setup:
	@bash scripts/setup_env.sh

run: setup
	.venv/bin/quantdesk

test: setup
	.venv/bin/ruff check app ui engine tests
	bash scripts/lint_imports.sh
	bash scripts/test_tools.sh
	QT_QPA_PLATFORM=offscreen QUANTDESK_CRASH_REPORT=.pytest-crash.txt .venv/bin/python -m pytest -q \
		|| { rc=$$?; bash scripts/crash_summary.sh .pytest-crash.txt; exit $$rc; }
	@echo "==> The journeys again, in a real X session (Xvfb, Qt's xcb platform)"
	QUANTDESK_CRASH_REPORT=.pytest-crash.txt bash scripts/under_x.sh .venv/bin/python -m pytest -q tests/journeys \
		|| { rc=$$?; bash scripts/crash_summary.sh .pytest-crash.txt; exit $$rc; }

lint: setup
	.venv/bin/ruff check app ui engine tests
	bash scripts/lint_imports.sh
