# sealtrack — thin make front end over meson + ninja.
#   make run        install missing dependencies, build, start the server (SQLite, port 8888)
#   make test       the full test suite (unit, vectors, end to end) and 3 s of fuzzing per target
#   make test-asan  the same suite built with AddressSanitizer + UBSan
#   make fuzz       run every fuzz target (FUZZ_SECONDS each, default 60)
#   make bench      benchmarks (print figures; never asserted)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
DB ?= sealtrack.db
PORT ?= 8888

.PHONY: all deps build run test test-asan fuzz bench clean

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/sealtrack serve --db $(DB) --port $(PORT)

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2
	$(MAKE) fuzz FUZZ_SECONDS=3

$(ASAN_BUILD)/build.ninja: | deps
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

test-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes 2 --timeout-multiplier 3

$(FUZZ_BUILD)/build.ninja: | deps
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debug -Dfuzz=true

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	./scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	[ -d build-release ] || meson setup build-release --buildtype=release
	ninja -C build-release
	./bench/run.sh build-release

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
