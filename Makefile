# Cairn: one Makefile for the whole tree.
#
#   make              build everything (release variant: -O2 -g) into build/release/
#   make test         ASan+UBSan build, every Criterion suite, the Riak Node.js client against
#                     a real cairnd, the runtime's TSan stage, then the fault-injection smoke
#                     run on the ASan build (root; SKIPPED otherwise)
#   make tsan         only the ThreadSanitizer stage (plain C stress programs, see tests/stress/)
#   make run          build and start a local 3-node cluster (see README); make cluster N=5
#   make bench        every benchmark; bench-runtime: runtime vs the BEAM; bench-node: vs Redis;
#                     bench-cluster: a 3-node cluster vs a 3-member etcd cluster
#   make fuzz         each libFuzzer target for FUZZ_SECONDS (clang)
#   make jepsen-smoke the fault-injection smoke run (root; jepsen/, docs/reliability.md);
#                     make jepsen: the full suite
#   make deps         install missing Debian packages (every other target depends on it)
#
# Knobs: CC=clang, WERROR=1 (CI), V=1 (echo commands), FUZZ_SECONDS=30, BUILD=build (root).
#
# Layout rules (see docs/architecture.md): every top-level folder in LIB_DIRS is one static
# library built from its *.c; a file named <name>_main.c is a program called <name>;
# tests/unit/test_*.c are Criterion suites; tests/stress/*.c are plain C stress programs;
# fuzz/fuzz_*.c are libFuzzer targets; proto/*.proto are compiled by protoc-c.

CC       ?= cc
BUILD    ?= build
WERROR   ?= 0
FUZZ_SECONDS ?= 30

# Dependency order (higher first): each library may only use those after it.
LIB_DIRS := node admin client ring storage runtime proto

WARN     := -Wall -Wextra -Wstrict-prototypes -Wno-unused-parameter -Wshadow -Wvla
ifeq ($(WERROR),1)
WARN     += -Werror
endif
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread -fPIC -fno-omit-frame-pointer -MMD -MP $(WARN) \
               -I. -I$(BUILD)/gen $(CFLAGS_EXTRA)
LDLIBS   := -lleveldb -lsnappy -lprotobuf-c -luv -lcrypto -lxxhash -lm -pthread

# Variant flags. The release build uses the runtime's pools; sanitizer builds bypass them
# (RT_POOL_MALLOC) so that every allocation is visible to the sanitizer.
release_CFLAGS := -O2 -g
asan_CFLAGS    := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -DRT_POOL_MALLOC
tsan_CFLAGS    := -O1 -g -fsanitize=thread -DRT_POOL_MALLOC
release_LDFLAGS :=
# Release programs use jemalloc (as Debian's redis-server does): under the node's mix of
# threads (a request's buffers are allocated on one scheduler and freed on another) glibc's
# malloc cost about a quarter of cairnd's CPU per get; see docs/benchmarks.md. Sanitizer builds keep
# the libc allocator, which the sanitizers replace.
release_MALLOC := -ljemalloc
asan_LDFLAGS   := -fsanitize=address,undefined
tsan_LDFLAGS   := -fsanitize=thread

# Objects depend on the compiler and flags: changing CC, WERROR or CFLAGS_EXTRA rebuilds.
SETTINGS := $(BUILD)/.settings
SETTINGS_NOW := $(CC) $(WERROR) $(CFLAGS_EXTRA)
$(shell mkdir -p $(BUILD); [ "$$(cat $(SETTINGS) 2>/dev/null)" = "$(SETTINGS_NOW)" ] || echo "$(SETTINGS_NOW)" > $(SETTINGS))

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all deps release asan tsan-build test test-unit tsan run cluster bench bench-runtime bench-node bench-cluster jepsen jepsen-smoke jepsen-smoke-asan \
        bench-storage fuzz clean proto help
.DEFAULT_GOAL := all

all: release

help:
	@sed -n '2,19p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@scripts/deps.sh

# ---------------------------------------------------------------- generated protobuf code
PROTOS     := $(wildcard proto/*.proto)
PROTO_C    := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_H    := $(PROTO_C:.c=.h)
PROTO_STAMP := $(BUILD)/gen/.stamp

$(PROTO_STAMP): $(PROTOS) | deps
	@mkdir -p $(BUILD)/gen
	$(Q)if [ -n "$(PROTOS)" ]; then protoc-c --c_out=$(BUILD)/gen $(PROTOS); fi
	@touch $@

# The generated files appear as a side effect of the stamp's rule.
$(PROTO_C) $(PROTO_H): $(PROTO_STAMP) ;

proto: $(PROTO_STAMP)

# ---------------------------------------------------------------- sources
lib_srcs = $(filter-out %_main.c,$(wildcard $(1)/*.c))
MAIN_SRCS   := $(wildcard $(addsuffix /*_main.c,$(LIB_DIRS) bench jepsen))
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
CLUSTER_SRCS := $(wildcard tests/cluster/test_*.c)
STRESS_SRCS := $(wildcard tests/stress/*.c)
BENCH_LIB_SRCS := $(call lib_srcs,bench)
NONEMPTY_LIBS := $(strip $(foreach d,$(LIB_DIRS),$(if $(call lib_srcs,$(d)),$(d))) \
                 $(if $(PROTOS),proto))

# A test or stress program links only the layers its name allows (the dependency law):
# test_rt_* / rt_* -> runtime; test_store_* / store_* -> storage; anything else -> all.
layer_of = $(if $(filter test_rt_% rt_%,$(1)),runtime proto,$(if $(filter test_store_% store_%,$(1)),storage proto,$(NONEMPTY_LIBS)))
test_libs = $(foreach d,$(call layer_of,$(2)),$(if $(filter $(d),$(NONEMPTY_LIBS)),$(BUILD)/$(1)/lib/libcairn_$(d).a))

# Per-variant rules, instantiated for release, asan and tsan.
define VARIANT
$(1)_OBJ   := $(BUILD)/$(1)/obj
$(1)_LIBS  := $$(foreach d,$$(NONEMPTY_LIBS),$(BUILD)/$(1)/lib/libcairn_$$(d).a)
$(1)_PROGS := $$(foreach s,$$(MAIN_SRCS),$(BUILD)/$(1)/bin/$$(notdir $$(s:_main.c=)))
$(1)_UNITS := $$(patsubst tests/unit/%.c,$(BUILD)/$(1)/tests/%,$$(UNIT_SRCS))
$(1)_STRESS := $$(patsubst tests/stress/%.c,$(BUILD)/$(1)/stress/%,$$(STRESS_SRCS))
$(1)_CLUSTER := $$(patsubst tests/cluster/%.c,$(BUILD)/$(1)/cluster/%,$$(CLUSTER_SRCS))
$(1)_BENCHLIB := $$(if $$(BENCH_LIB_SRCS),$(BUILD)/$(1)/lib/libcairn_bench.a)
# libcairn, the public client library: client/*.c plus the Riak messages, static and shared.
$(1)_CLIENT_OBJS := $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(call lib_srcs,client) $(BUILD)/gen/proto/riak.pb-c.c)
$(1)_LIBCAIRN := $$(if $$(call lib_srcs,client),$(BUILD)/$(1)/lib/libcairn.a $(BUILD)/$(1)/lib/libcairn.so)

$(BUILD)/$(1)/lib/libcairn.a: $$($(1)_CLIENT_OBJS)
	@mkdir -p $$(dir $$@)
	$$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/lib/libcairn.so: $$($(1)_CLIENT_OBJS)
	@mkdir -p $$(dir $$@)
	@echo "  LD[$(1)] $$@"
	$$(Q)$$(CC) -shared $$($(1)_LDFLAGS) -Wl,-soname,libcairn.so -o $$@ $$^ -lprotobuf-c

$(BUILD)/$(1)/obj/%.o: %.c $$(SETTINGS) | $$(PROTO_STAMP)
	@mkdir -p $$(dir $$@)
	@echo "  CC[$(1)] $$<"
	$$(Q)$$(CC) $$(BASE_CFLAGS) $$($(1)_CFLAGS) -c $$< -o $$@

$(BUILD)/$(1)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c $$(SETTINGS) | $$(PROTO_STAMP)
	@mkdir -p $$(dir $$@)
	$$(Q)$$(CC) $$(BASE_CFLAGS) $$($(1)_CFLAGS) -Wno-shadow -c $$< -o $$@

$(BUILD)/$(1)/lib/libcairn_proto.a: $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(PROTO_C))
	@mkdir -p $$(dir $$@)
	$$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/tests/%: $(BUILD)/$(1)/obj/tests/unit/%.o $$$$(call test_libs,$(1),%)
	@mkdir -p $$(dir $$@)
	@echo "  LD[$(1)] $$@"
	$$(Q)$$(CC) $$($(1)_LDFLAGS) -o $$@ $$< $$(call test_libs,$(1),$$*) -lcriterion $$(LDLIBS)

$(BUILD)/$(1)/cluster/%: $(BUILD)/$(1)/obj/tests/cluster/%.o $$($(1)_LIBS)
	@mkdir -p $$(dir $$@)
	@echo "  LD[$(1)] $$@"
	$$(Q)$$(CC) $$($(1)_LDFLAGS) -o $$@ $$< $$($(1)_LIBS) -lcriterion $$(LDLIBS)

$(BUILD)/$(1)/stress/%: $(BUILD)/$(1)/obj/tests/stress/%.o $$$$(call test_libs,$(1),%)
	@mkdir -p $$(dir $$@)
	@echo "  LD[$(1)] $$@"
	$$(Q)$$(CC) $$($(1)_LDFLAGS) -o $$@ $$< $$(call test_libs,$(1),$$*) $$(LDLIBS)
endef

# One library per folder: build/<variant>/lib/libcairn_<dir>.a
define LIBRULE
$(BUILD)/$(1)/lib/libcairn_$(2).a: $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(call lib_srcs,$(2)))
	@mkdir -p $$(dir $$@)
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
endef

# One program per <dir>/<name>_main.c: build/<variant>/bin/<name>
define PROGRULE
$(BUILD)/$(1)/bin/$(notdir $(2:_main.c=)): $(BUILD)/$(1)/obj/$(2:.c=.o) $$($(1)_BENCHLIB) $$($(1)_LIBS)
	@mkdir -p $$(dir $$@)
	@echo "  LD[$(1)] $$@"
	$$(Q)$$(CC) $$($(1)_LDFLAGS) -o $$@ $$< $$($(1)_BENCHLIB) $$($(1)_LIBS) $$(LDLIBS) $$($(1)_MALLOC)
endef

.SECONDEXPANSION:
$(foreach v,release asan tsan,$(eval $(call VARIANT,$(v))))
$(foreach v,release asan tsan,$(foreach d,$(filter-out proto,$(NONEMPTY_LIBS)) $(if $(BENCH_LIB_SRCS),bench),$(eval $(call LIBRULE,$(v),$(d)))))
$(foreach v,release asan tsan,$(foreach s,$(MAIN_SRCS),$(eval $(call PROGRULE,$(v),$(s)))))

release: deps $(release_LIBS) $(release_LIBCAIRN) $(release_PROGS) $(release_UNITS) $(release_STRESS) \
         $(release_CLUSTER)
asan: deps $(asan_LIBS) $(asan_LIBCAIRN) $(asan_PROGS) $(asan_UNITS) $(asan_STRESS) $(asan_CLUSTER)
tsan-build: deps $(tsan_LIBS) $(tsan_STRESS)

# ---------------------------------------------------------------- test
# make test = every Criterion suite under ASan+UBSan, then the runtime's stress programs
# under ThreadSanitizer (Criterion cannot run under TSan: its issue #274).
test: asan
	@scripts/run-tests.sh $(BUILD)/asan/tests $(asan_UNITS)
	@BUILD=$(BUILD) scripts/run-tests.sh $(BUILD)/asan/cluster $(asan_CLUSTER)
	@BUILD=$(BUILD) scripts/test-compat.sh asan
	@jepsen/check-selftest.sh $(BUILD)/asan/bin/jepsen-check
	@jepsen/report-selftest.sh $(BUILD)/asan/bin/jepsen-report
	@$(MAKE) --no-print-directory tsan
	@$(MAKE) --no-print-directory jepsen-smoke-asan

tsan: tsan-build
	@scripts/run-stress.sh $(tsan_STRESS)

# ---------------------------------------------------------------- run, bench, fuzz
# make run: a local 3-node cluster (scripts/cluster.sh); make cluster N=5: N nodes.
N ?= 3
run: release
	@BUILD=$(BUILD) scripts/cluster.sh 3

cluster: release
	@BUILD=$(BUILD) scripts/cluster.sh $(N)

bench: release
	@scripts/bench.sh all

bench-runtime: release
	@scripts/bench.sh runtime

bench-storage: release
	@scripts/bench.sh storage

# One cairnd against Debian's redis-server, same concurrency and value size (see
# scripts/bench-node.sh; installs redis-server/redis-tools if missing).
bench-node: release
	@CAIRN_WITH_REDIS=1 scripts/deps.sh
	@scripts/bench-node.sh

# A 3-node Cairn cluster against a 3-member etcd cluster (Debian's etcd-server), same
# concurrency and value size (see scripts/bench-cluster.sh; installs etcd-server if missing).
bench-cluster: release
	@CAIRN_WITH_ETCD=1 scripts/deps.sh
	@BUILD=$(BUILD) scripts/bench-cluster.sh

# The fault-injection suite (jepsen/, docs/reliability.md; root: network namespaces and
# iptables). jepsen-smoke: one partition, one kill -9, one pause on 5 nodes; jepsen: every
# fault with every workload (long). Both install iptables, faketime and libnetfilter-queue if
# missing.
jepsen-smoke: release
	@CAIRN_WITH_JEPSEN=1 scripts/deps.sh
	@BUILD=$(BUILD) jepsen/run.sh --smoke

jepsen: release
	@CAIRN_WITH_JEPSEN=1 scripts/deps.sh
	@BUILD=$(BUILD) jepsen/suite.sh

# make test's last stage: the smoke run on the ASan+UBSan build, so memory errors under
# faults show too. It needs root (network namespaces, iptables): as another user it says
# SKIPPED, loudly; CAIRN_SKIP_JEPSEN=1 skips it on purpose.
jepsen-smoke-asan: asan
	@if [ "$${CAIRN_SKIP_JEPSEN:-0}" = 1 ]; then \
	    echo "jepsen-smoke: SKIPPED (CAIRN_SKIP_JEPSEN=1)"; \
	elif [ "$$(id -u)" != 0 ]; then \
	    echo "jepsen-smoke: SKIPPED: it needs root (network namespaces, iptables): run make test as root"; \
	else \
	    CAIRN_WITH_JEPSEN=1 scripts/deps.sh && \
	    CAIRN_BIN=$(CURDIR)/$(BUILD)/asan/bin JEPSEN_BIN=$(CURDIR)/$(BUILD)/asan/bin \
	        jepsen/run.sh --smoke --name ci-smoke-$$(date -u +%Y%m%d-%H%M%S); \
	fi

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
fuzz: deps $(PROTO_STAMP)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_SRCS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
