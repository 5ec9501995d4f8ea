# The two commands of the README. Both create/refresh ./.venv first (idempotent:
# under a second when nothing changed; the llama-cpp-python build is cached).
.PHONY: run test test-fast setup lint

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

# The daily loop (under a minute here): lint, the layers, and the quick Qt-free packages' tests
# plus the architecture and chat view ones. `make test` stays the whole suite.
FAST_TESTS = tests/engine/chat tests/engine/library tests/engine/diagnostics \
	tests/engine/test_file_hash.py tests/engine/test_store_migrations.py \
	tests/app/test_architecture.py tests/ui/test_chat_view.py

test-fast: setup
	.venv/bin/ruff check app ui engine tests
	bash scripts/lint_imports.sh
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q -m "not starter and not slow" $(FAST_TESTS)

lint: setup
	.venv/bin/ruff check app ui engine tests
	bash scripts/lint_imports.sh
