# callcenter: build, run and test entry points.
#   make run    set up the machine, build release, create an API key, serve on $(LISTEN)
#   make test   set up the machine + PostgreSQL, fetch the models (the speech tests use them),
#               cargo test, then Schemathesis against a live server
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# cargo from rustup even when the caller's PATH lacks ~/.cargo/bin
export PATH := $(HOME)/.cargo/bin:$(PATH)

LISTEN      ?= 127.0.0.1:8080
# Answer SIP too, e.g. `make run SIP_LISTEN=127.0.0.1:5060` (off when empty).
SIP_LISTEN  ?=
DATA_DIR    ?= ./data
RELEASE_BIN := target/release/callcenter
TEST_PG_URL ?= postgres://callcenter:callcenter@127.0.0.1:5432/postgres

.PHONY: help run test bench fmt lint clean

help:
	@echo "make run    setup, fetch models, build release, create an API key, serve on LISTEN=$(LISTEN)"
	@echo "make test   setup (+PostgreSQL 15), fetch models, cargo test --all-targets, Schemathesis API fuzzing"
	@echo "make bench  cargo bench"
	@echo "make fmt    cargo fmt --all"
	@echo "make lint   cargo clippy --all-targets -- -D warnings"
	@echo "make clean  cargo clean (keeps ./data)"

run:
	bash scripts/setup.sh
	bash models/fetch.sh
	cargo build --release
	mkdir -p "$(DATA_DIR)"
	key="$$($(RELEASE_BIN) keys create --account default --data-dir "$(DATA_DIR)" | tail -n 1)"; \
	echo; \
	echo "API key: $$key"; \
	echo "URL:     http://$(LISTEN)  (REST API under /v1, OpenAPI at /v1/openapi.json)"; \
	echo; \
	exec $(RELEASE_BIN) serve --listen "$(LISTEN)" --data-dir "$(DATA_DIR)" $(if $(SIP_LISTEN),--sip-listen "$(SIP_LISTEN)")

# The PostgreSQL URL is exported for the whole test run (cargo test and schemathesis).
test: export CALLCENTER_TEST_PG_URL := $(TEST_PG_URL)
# cargo test's own "test result:" lines are printed as they come; a log copy is summed up at
# the end so the run's closing line is the total ("summary: N passed, N failed, N skipped").
# --no-fail-fast: one failing test binary must not hide how the others fare.
TEST_LOG := target/cargo-test.log
test:
	bash scripts/setup.sh --test
	bash models/fetch.sh
	mkdir -p target
	cargo test --all-targets --no-fail-fast 2>&1 | tee $(TEST_LOG)
	bash scripts/schemathesis.sh
	sed -e 's/\x1b\[[0-9;]*m//g' $(TEST_LOG) | awk '$$1 == "test" && $$2 == "result:" \
	    { p += $$4; f += $$6; i += $$8; n++ } \
	    END { printf "cargo test: %d test targets; schemathesis: passed\nsummary: %d passed, %d failed, %d skipped\n", n, p, f, i }'

bench:
	cargo bench

fmt:
	cargo fmt --all

lint:
	cargo clippy --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf .hypothesis .schemathesis schemathesis-report
