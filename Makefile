# Thin wrapper over Meson: the commands the README shows. Real build logic
# lives in meson.build; this only strings the steps together.

MESON ?= meson
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
PREFIX ?= /usr/local

# Debian (bookworm) packages needed to build, test, fuzz and benchmark.
DEB_PACKAGES := build-essential meson ninja-build pkg-config libjansson-dev \
	libxxhash-dev libzstd-dev libcmocka-dev libcurl4-openssl-dev libmnl-dev libarchive-dev \
	python3 clang libclang-rt-14-dev procps iproute2 runc busybox-static docker.io \
	podman netavark scdoc redis-server tmux bsdutils default-jdk-headless nodejs \
	libnftables-dev nftables postgresql

.PHONY: all build deps asan demo check install fuzz bench bench-table clean

# Meson does not look into tests/zdtm/ by itself: reconfigure a build dir
# when the workload list (tests/lib/workloads.py) differs from the one it
# was configured with.
zdtm_fresh = python3 tests/lib/workloads.py meson | cmp -s - $(1)/tests/zdtm/workloads.txt || \
	$(MESON) setup --reconfigure $(1)

all: build

build:
	@test -f $(BUILD)/build.ninja || $(MESON) setup $(BUILD) --werror
	@$(call zdtm_fresh,$(BUILD))
	$(MESON) compile -C $(BUILD)

# Installs only what is missing, so a prepared machine never calls apt.
deps:
	@command -v dpkg-query >/dev/null || { echo "deps: not a Debian system; install the equivalents of: $(DEB_PACKAGES)"; exit 0; }; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: missing packages:$$missing"; \
		echo "deps: run as root: apt-get install$$missing"; exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

asan:
	@test -f $(ASAN_BUILD)/build.ninja || \
		$(MESON) setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false
	@$(call zdtm_fresh,$(ASAN_BUILD))
	$(MESON) compile -C $(ASAN_BUILD)

demo:
	$(MAKE) deps
	$(MAKE) build
	./demo/demo.sh

# Sequential on purpose: deps must be in place before anything compiles.
check:
	$(MAKE) deps
	$(MAKE) build
	$(MAKE) asan
	python3 tests/run.py --build $(BUILD) --asan-build $(ASAN_BUILD)

# bin/stasis, libexec/stasis/stasis-stub (where the binary looks for it)
# and share/man/man1/stasis.1 under PREFIX, staged under DESTDIR if given.
install:
	@test -f $(BUILD)/build.ninja || $(MESON) setup $(BUILD) --werror
	$(MESON) configure $(BUILD) -Dprefix=$(PREFIX)
	$(MESON) install -C $(BUILD) $(if $(DESTDIR),--destdir "$(abspath $(DESTDIR))")

# New corpus entries go to fuzz/out/corpus (ignored by git); crashes to
# fuzz/out/crash-*: minimize them and keep them in fuzz/regressions/.
fuzz:
	@test -f $(FUZZ_BUILD)/build.ninja || CC=clang $(MESON) setup $(FUZZ_BUILD) -Dfuzz=true
	$(MESON) compile -C $(FUZZ_BUILD) fuzz-image
	mkdir -p fuzz/out/corpus
	./$(FUZZ_BUILD)/fuzz/fuzz-image -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
		-artifact_prefix=fuzz/out/ fuzz/out/corpus fuzz/corpus

bench:
	$(MAKE) deps
	$(MAKE) build
	python3 bench/bench.py
	python3 bench/cowshare.py --build $(BUILD)
	python3 bench/lazy.py

# Issue 13's targets in one table (bench/table.py; QUICK=1: 2 runs, warm only).
bench-table:
	$(MAKE) build
	python3 bench/table.py --build $(BUILD) $(if $(QUICK),--quick)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) fuzz/out
