# The habits of this project, as make targets. `make test` is what CI runs.
GO ?= go
# CI fuzzes by count, not time: a time limit that ends while a worker is
# busy can fail the run with "context deadline exceeded" (seen in CI), a
# harness flake rather than a finding.
FUZZTIME ?= 200000x

.PHONY: build setup test lint unit fuzz bench golden cross-windows gpu-bin clean

build:
	$(GO) build -o .bin/qwgpu ./cmd/qwgpu

# gofmt check, go vet, then every test with a GPU adapter required
# (lavapipe on a machine without a GPU): a missing adapter fails, never skips.
test: setup lint unit

# What the tests need (lavapipe, llvmpipe GL, node/chromium for the server's
# end-to-end tests), installed through apt when missing.
setup:
	bash .ci/setup

lint:
	@out=$$(gofmt -l cmd gpu wgsl qwen3 weights); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	QWGPU_REQUIRE_GPU=1 $(GO) test -count=1 -timeout 40m ./...

# Each fuzz target for a short while (CI); longer runs: make fuzz FUZZTIME=1h.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) ./weights/
	$(GO) test -run '^$$' -fuzz '^FuzzParseGGUF$$' -fuzztime $(FUZZTIME) ./weights/
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./qwen3/
	$(GO) test -run '^$$' -fuzz '^FuzzEncodeDecode$$' -fuzztime $(FUZZTIME) ./qwen3/tokenizer/

# End-to-end speed, llama-bench style (meaningful on a real GPU only).
bench:
	$(GO) run ./cmd/qwgpu bench --shape 0.6B -p 512 -n 128

# The CPU reference against transformers' golden data, alone.
golden:
	$(GO) test -count=1 -run 'Reference|Golden' -v ./qwen3/

# The DX12/Windows path must at least compile and link (cgo with mingw-w64).
cross-windows:
	CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -o .bin/qwgpu.exe ./cmd/qwgpu

clean:
	rm -rf .bin
