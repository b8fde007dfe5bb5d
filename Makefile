# dtrain: the two commands of the README.
#   make run   installs missing Debian packages, builds, runs the main job
#   make test  installs missing Debian packages, builds, runs the whole test suite
#   make test-comm  (CI, after make test) the comm-only build: dtrain inside a user's project
#                   (add_subdirectory, tests/package/comm_user) without Gloo and LibTorch, and
#                   that build's tests (docs/library.md)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
COMM_BUILD ?= build-comm
RUN_ARGS ?=  # extra flags for the main job (the README test passes small limits)

.PHONY: all setup configure build run test test-comm bench clean format

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: setup $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	OPENBLAS_NUM_THREADS=1 $(BUILD)/dtrain run $(RUN_ARGS)

test: build
	cd $(BUILD) && OPENBLAS_NUM_THREADS=1 ctest --output-on-failure -j $(JOBS) --timeout 900

test-comm: setup
	cmake -S tests/package/comm_user -B $(COMM_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DDTRAIN_SOURCE_DIR=$(CURDIR) -DDTRAIN_WITH_GLOO=OFF -DDTRAIN_WITH_TORCH=OFF \
	  -DDTRAIN_BUILD_TESTS=ON -DDTRAIN_BUILD_BENCH=ON -DDTRAIN_INSTALL=ON $(CMAKE_FLAGS)
	cmake --build $(COMM_BUILD) -j $(JOBS)
	cd $(COMM_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	$(BUILD)/dtrain bench allreduce

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(COMM_BUILD)
