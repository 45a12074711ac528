# Switchboard — the two commands a new machine needs:
#   make run    run the service on its embedded default (SQLite + built-in CRM + simulated carrier)
#   make test   run every test (SQLite always; PostgreSQL and the real protocol peers too)

GO ?= go
# The PostgreSQL database the tests use (the local server; created if missing).
SWITCHBOARD_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable
export SWITCHBOARD_TEST_DATABASE_URL

.PHONY: run test build peers testdb vet fuzz bench

run:
	$(GO) run ./cmd/switchboard serve

build:
	$(GO) build -o switchboard ./cmd/switchboard

# Node test peers (Prism for the Twilio contract test, an SMPP server,
# Playwright for browser tests), pinned in tools/node/package-lock.json.
peers:
	@if [ ! -d tools/node/node_modules ] || [ tools/node/package-lock.json -nt tools/node/node_modules/.package-lock.json ]; then \
		npm ci --prefix tools/node --no-audit --no-fund; fi

# Create the test database on the local PostgreSQL server when it is missing.
testdb:
	@$(GO) run ./cmd/switchboard-testdb "$(SWITCHBOARD_TEST_DATABASE_URL)"

test: peers testdb
	SWITCHBOARD_REQUIRE_PEERS=1 $(GO) test -race -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)

# Fuzz every parser for FUZZTIME each (default 10s).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; done

bench:
	$(GO) run ./cmd/switchboard bench
