# hsmfs: the two set-up commands are `make demo` and `make test` (README.md).
# Both install what they need with apt-get first (Debian 12, as root).

SHELL := /bin/bash
JOBS ?= $(shell nproc)

# Everything the build, the tests, the demo and the benchmarks need.
DEBIAN_PACKAGES := build-essential cmake ninja-build pkg-config clang-format clang-tidy \
  libfuse3-dev fuse3 libsqlite3-dev sqlite3 libssl-dev libssh-dev openssh-server \
  libboost-filesystem-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libarchive-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libpcre2-dev \
  libxxhash-dev attr util-linux procps psmisc python3 python3-irodsclient bc openssl rsync \
  bindfs

RELEASE := build/release
ASAN := build/asan-ubsan

.PHONY: all deps build install test demo undemo bench check-full format format-check tidy tsan clean

all: build

# Idempotent: installs only what is missing.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

build: deps
	cmake --preset release >/dev/null
	cmake --build $(RELEASE) -j$(JOBS)

# The CI command: warnings as errors, ASan+UBSan, every test, formatting.
test: deps format-check
	cmake --preset asan-ubsan -DHSMFS_WERROR=ON >/dev/null
	cmake --build $(ASAN) -j$(JOBS)
	cd $(ASAN) && ctest --output-on-failure -j$(JOBS) --timeout 900

# Installs hsmfs, hsmctl (and later tools) into /usr/local/bin, where mount(8)
# finds hsmfs for fstab lines of type fuse.hsmfs.
install: build
	cmake --install $(RELEASE) --prefix /usr/local

demo: build
	@mkdir -p demo-mnt
	@ls demo-mnt >/dev/null 2>&1 || fusermount3 -uz demo-mnt 2>/dev/null || true
	@$(RELEASE)/bin/hsmfs --demo demo-mnt

undemo:
	fusermount3 -u demo-mnt

bench: build
	@for b in tests/bench/*.sh; do HSMFS_BIN=$(CURDIR)/$(RELEASE) bash $$b || exit 1; done

# Full-scale variants that do not fit in `make test`'s time budget.
check-full: build
	cd $(RELEASE) && HSMFS_FULL=1 ctest --output-on-failure -j$(JOBS) --timeout 3600

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

tidy: build
	git ls-files '*.cc' | grep -v '^tests/' | xargs clang-tidy -p $(RELEASE) --quiet

tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build build/tsan -j$(JOBS)
	cd build/tsan && ctest --output-on-failure -j$(JOBS) -LE fuse

clean:
	rm -rf build
