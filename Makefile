# SPDX-License-Identifier: MIT
# Thin wrapper: every target is one or two go commands. See README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS  := -s -w -X github.com/devmemtcp/ncdevmem/internal/version.Version=$(VERSION) \
            -X github.com/devmemtcp/ncdevmem/internal/version.Commit=$(COMMIT)
BIN      := bin/ncdevmem
# TAGS=cuda builds GPU memory support (loads libcuda at run time; the binary is then dynamically linked).
TAGS     ?=
# Every tier's go test -json stream goes through testcheck: counts, failures, and skips judged
# against the tier's allow-list in .ci/skips/ (a skip nobody expected fails the tier).
TESTCHECK := bin/testcheck
SHELL    := /bin/bash
.SHELLFLAGS := -o pipefail -ec

.PHONY: build run test test-unit test-root test-vm bench bench-loopback stability lint fuzz clean softnic $(TESTCHECK)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ncdevmem

# The embedded default: both servers in-process, loopback, host memory, 5 s, payload validated.
run: build
	./$(BIN) run

# Everything this machine can run: unit and fake-kernel tests, then (as root) the host-kernel tier.
test: build lint test-unit test-root

test-unit: $(TESTCHECK)
	$(GO) test -count=1 -json ./... | ./$(TESTCHECK) -tier unit -allow .ci/skips/unit.txt
	$(GO) test -count=1 -json -tags cuda ./gpu/ ./dmabuf/ | ./$(TESTCHECK) -tier unit-cuda -allow .ci/skips/unit.txt

# Host-kernel tier: network namespaces, veth, real servers. Needs root; fails (not skips) without it.
test-root: build $(TESTCHECK)
	NCDEVMEM_ROOT_TESTS=1 NCDEVMEM_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -json -run 'Root' ./... | \
	  ./$(TESTCHECK) -tier root -allow .ci/skips/root.txt

$(TESTCHECK):
	$(GO) build -o $@ ./internal/testcheck

# Guest-kernel tier under QEMU (udmabuf, real binds, netdevsim).
test-vm: build $(TESTCHECK)
	./scripts/vm/run-tests.sh

# The software devmem NIC (GPL-2.0 kernel module) against the running kernel's headers; KDIR= for
# another tree. See softnic/README.md and the README's "Devmem without a devmem NIC".
softnic:
	$(MAKE) -C softnic $(if $(KDIR),KDIR=$(KDIR))

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Timing scripts, not tests (they depend on a quiet machine, so CI does not gate on them): the
# default run against iperf3 over loopback in interleaved rounds, and ten default runs in a row.
bench-loopback: build
	./scripts/bench-loopback.sh

stability: build
	./scripts/stability.sh

# Every fuzz target in the tree for FUZZTIME each (their seed corpora also run in make test-unit).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg || exit 1; \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags cuda ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./... && staticcheck -tags cuda ./...; \
	elif [ "$$CI" = true ]; then echo 'lint: staticcheck missing (.ci/run installs it)'; exit 1; \
	else echo 'lint: staticcheck not installed, skipped (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)'; fi

clean:
	rm -rf bin
	@if [ -f /lib/modules/$$(uname -r)/build/Makefile ]; then $(MAKE) -C softnic clean; fi
