# Gregor — build, run and test.
#
#   make            build/gregor (release: -O2 -g)
#   make asan       build-asan/gregor (ASan + UBSan)
#   make tsan       build-tsan/gregor and unit tests (ThreadSanitizer)
#   make run        build and start a single-node broker on 127.0.0.1:9092, data in ./data,
#                   web console on http://127.0.0.1:9644/
#   make cluster    build and start three brokers (each a controller voter) on 127.0.0.1:9092,
#                   9093, 9094, data in ./data/node-1..3, output prefixed [node-N]; Ctrl-C stops all;
#                   web consoles on http://127.0.0.1:9644-9646/
#   make check      generated protocol code up to date, C files formatted (scripts/check.sh)
#   make test       make check, then build everything (release, ASan, TSan) and run every
#                   test; last line is "N passed, N failed"
#   make bench      benchmarks (on demand, not part of make test)
#   make fuzz       libFuzzer targets, 60 s each (make test runs them for ~8 s each)
#   make soak       SOAK_MINUTES (10) of mixed load, then data and memory checks
#   make format     clang-format every hand-written C file (what make check checks)
#
# Every .c file under src/ except src/main.c goes into a static library; tests/unit/test_*.c
# are one binary each, linked against it and against a second library of test-only code:
# tests/support/ and the generated tests/gen/ (tools/genproto.py's message fillers), which the
# broker never links. New files are picked up without editing this file.

CC      ?= cc
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
INCS    := -Isrc
LIBS    := -lraft -luv -lrdkafka -lpcre2-8 -lssl -lcrypto -lz -llz4 -lzstd -lpthread -lm

SRCS      := $(shell find src -name '*.c' ! -path src/main.c | sort)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_LIB_SRCS := $(shell find tests/support tests/gen -name '*.c' | sort)

# Three flavours share one rule set: release in build/, ASan/UBSan in build-asan/,
# ThreadSanitizer in build-tsan/.
REL_DIR   := build
ASAN_DIR  := build-asan
TSAN_DIR  := build-tsan
REL_FLAGS := -O2 -g
ASAN_FLAGS:= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN_FLAGS:= -O1 -g -fno-omit-frame-pointer -fsanitize=thread

ALL_OBJS  := $(foreach d,$(REL_DIR) $(ASAN_DIR) $(TSAN_DIR),\
               $(patsubst %.c,$(d)/obj/%.o,src/main.c $(SRCS) $(UNIT_SRCS) $(TEST_LIB_SRCS)))
DEPFILES  := $(ALL_OBJS:.o=.d)

# Object files are kept (not deleted as intermediates) so a second make does nothing.
.SECONDARY: $(ALL_OBJS)

.PHONY: all asan tsan run cluster check test unit interop deps bench format clean fuzz soak checker

all: deps-check $(REL_DIR)/gregor $(patsubst tests/unit/%.c,$(REL_DIR)/tests/%,$(UNIT_SRCS))

asan: deps-check $(ASAN_DIR)/gregor $(patsubst tests/unit/%.c,$(ASAN_DIR)/tests/%,$(UNIT_SRCS))

tsan: deps-check $(TSAN_DIR)/gregor $(patsubst tests/unit/%.c,$(TSAN_DIR)/tests/%,$(UNIT_SRCS))

# Each object records the headers it includes in a .d file next to it (-MMD -MP) and is
# rebuilt when one changes; an object without its .d (built before this rule) is rebuilt once.
# The Debian packages are an order-only prerequisite: installed before the first compile
# (make -j on a fresh machine), without rebuilding anything when the stamp changes.
define flavour
$(1)/obj/%.o: %.c $(1)/obj/%.d | $(REL_DIR)/.deps-ok
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CSTD) $$(WARN) $(2) $$(INCS) -MMD -MP -MF $(1)/obj/$$*.d -c $$< -o $$@
	@touch $$@

# The archives are rebuilt when this file changes too: a source moved elsewhere (as the fillers
# moved to tests/gen/) must leave the old archive, whose objects are all older than it.
$(1)/libgregor.a: $$(patsubst %.c,$(1)/obj/%.o,$$(SRCS)) Makefile
	@rm -f $$@
	ar rcs $$@ $$(filter %.o,$$^)

$(1)/libgregor-test.a: $$(patsubst %.c,$(1)/obj/%.o,$$(TEST_LIB_SRCS)) Makefile
	@rm -f $$@
	ar rcs $$@ $$(filter %.o,$$^)

$(1)/gregor: $(1)/obj/src/main.o $(1)/libgregor.a
	$$(CC) $(2) -o $$@ $$^ $$(LIBS)

# The test library comes first: its fillers use the codecs in libgregor.a.
$(1)/tests/%: $(1)/obj/tests/unit/%.o $(1)/libgregor-test.a $(1)/libgregor.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -o $$@ $$^ $$(LIBS)

# Test code includes its own headers as "support/..." and "gen/...".
$(1)/obj/tests/%.o: INCS += -Itests
endef

# The console's pages are compiled into assets.o (.incbin), which -MMD does not see.
CONSOLE_ASSETS := $(wildcard src/console/assets/*)
$(foreach d,$(REL_DIR) $(ASAN_DIR) $(TSAN_DIR),$(eval $(d)/obj/src/console/assets.o: $(CONSOLE_ASSETS)))

$(eval $(call flavour,$(REL_DIR),$(REL_FLAGS)))
$(eval $(call flavour,$(ASAN_DIR),$(ASAN_FLAGS)))
$(eval $(call flavour,$(TSAN_DIR),$(TSAN_FLAGS)))

# A missing .d file (explicit target, no recipe) counts as changed: its object is rebuilt.
$(DEPFILES):
include $(wildcard $(DEPFILES))

# Installs missing Debian packages (apt-get, sudo when not root) once; a stamp avoids re-checks.
deps-check: $(REL_DIR)/.deps-ok
$(REL_DIR)/.deps-ok: scripts/install-deps.sh
	@bash scripts/install-deps.sh
	@mkdir -p $(REL_DIR) && touch $@
deps:
	bash scripts/install-deps.sh

run: deps-check $(REL_DIR)/gregor
	@mkdir -p data
	@echo "make run: broker on 127.0.0.1:9092, web console on http://127.0.0.1:9644/ (loopback only)"
	./$(REL_DIR)/gregor serve --override listeners=PLAINTEXT://127.0.0.1:9092 \
		--override log.dirs=./data --override console.listener=http://127.0.0.1:9644

# Three nodes, each broker + controller voter: clients on 127.0.0.1:9092-9094, raft on
# 127.0.0.1:19091-19093, data in ./data/node-1..3; Ctrl-C stops all three (scripts/cluster.sh).
cluster: deps-check $(REL_DIR)/gregor
	@GREGOR_BIN=./$(REL_DIR)/gregor bash scripts/cluster.sh

check: deps-check
	@bash scripts/check.sh

# check first (a stale generated file or a format slip fails fast), then the builds and tests.
test: check
	@$(MAKE) --no-print-directory all asan tsan
	@bash tests/run.sh

bench: all
	@bash bench/run.sh

fuzz:
	@bash tests/fuzz/run.sh

# The mixed-fault checker (kill, pause, partition; tests/faults/test_queue_checker.py) for
# CHECKER_SECONDS (default 600; make test runs it for 40), printing its counts.
checker: all
	@CHECKER_SECONDS=$${CHECKER_SECONDS:-600} GREGOR_BIN=./$(REL_DIR)/gregor \
		/usr/bin/python3 tests/faults/test_queue_checker.py

# SOAK_MINUTES (default 10) of produce + consume + group churn, then data and memory checks.
soak: all
	@bash bench/soak.sh

format:
	clang-format -i $$(find src tests tools -name '*.[ch]' ! -path 'src/proto/gen/*' \
		! -path 'tests/gen/*' ! -path tests/unit/test_proto_xcheck.c)

clean:
	rm -rf $(REL_DIR) $(ASAN_DIR) $(TSAN_DIR)
