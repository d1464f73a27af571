# orchd: `make` builds build/orchd and its symlinks, `make check` runs every
# test, `make demo` runs the system. Local settings live in config.mk.

all:

include config.mk

# Sanitizer and debug builds get their own tree so objects never mix.
B = build
ifdef SAN
B = build-san
endif
ifdef DEBUG
B = build-debug
endif
G = $(B)/gen

LIB_SRCS = \
	lib/xalloc.c \
	lib/log.c \
	lib/error.c \
	lib/sbuf.c \
	lib/utf8.c \
	lib/json.c \
	lib/table.c \
	lib/human.c \
	lib/bar.c \
	lib/id.c \
	lib/status.c \
	lib/meta.c \
	lib/frame.c \
	lib/gz.c \
	lib/addr.c \
	lib/conn.c \
	lib/call.c \
	lib/server.c \
	lib/channel.c \
	lib/task.c \
	lib/queue.c \
	lib/store.c \
	lib/store_sqlite.c \
	lib/handler.c \
	lib/tls.c \
	lib/opt.c \
	lib/pb.c \
	lib/coalesce.c \
	lib/health.c \
	lib/reflect.c \
	lib/map.c \
	lib/scheduler.c \
	lib/taskpb.c \
	lib/stats.c \
	lib/auth.c

CMD_SRCS = \
	cmd/main.c \
	cmd/role.c \
	cmd/scheduler.c \
	cmd/gateway.c \
	cmd/worker.c \
	cmd/client.c \
	cmd/dev.c \
	cmd/bench.c

UNIT_SRCS = \
	tests/unit/runner.c \
	tests/unit/test_error.c \
	tests/unit/test_addr.c \
	tests/unit/test_map.c \
	tests/unit/test_id.c \
	tests/unit/test_status.c \
	tests/unit/test_meta.c \
	tests/unit/test_frame.c \
	tests/unit/test_task.c \
	tests/unit/test_queue.c \
	tests/unit/test_store.c \
	tests/unit/test_handler.c \
	tests/unit/test_scheduler.c \
	tests/unit/test_gz.c \
	tests/unit/test_coalesce.c \
	tests/unit/test_reflect.c \
	tests/unit/test_sbuf.c \
	tests/unit/test_utf8.c \
	tests/unit/test_opt.c \
	tests/unit/test_json.c \
	tests/unit/test_table.c \
	tests/unit/test_human.c \
	tests/unit/test_bar.c \
	tests/unit/test_stats.c \
	tests/unit/test_log.c \
	tests/unit/test_auth.c \
	tests/unit/test_pb.c

# Protos we compile with protoc-c; generated code lives under $(G) only.
PROTOS_OWN = \
	orchestrator/v1/orchestrator.proto
PROTOS_SYS = \
	grpc/health/v1/health.proto \
	grpc/reflection/v1alpha/reflection.proto \
	grpc/reflection/v1/reflection.proto
PROTOS_INTEROP = \
	grpc/testing/empty.proto \
	grpc/testing/messages.proto \
	grpc/testing/test.proto
PROTOS_BENCH = \
	bench/v1/echo.proto

GEN_C = $(addprefix $(G)/,$(PROTOS_OWN:.proto=.pb-c.c) $(PROTOS_SYS:.proto=.pb-c.c))
GEN_INTEROP_C = $(addprefix $(G)/,$(PROTOS_INTEROP:.proto=.pb-c.c))
GEN_BENCH_C = $(addprefix $(G)/,$(PROTOS_BENCH:.proto=.pb-c.c))
GEN_H = $(GEN_C:.c=.h) $(GEN_INTEROP_C:.c=.h) $(GEN_BENCH_C:.c=.h)

CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) -MMD -MP -Ilib -I$(G) \
	-DORCHD_VERSION='"$(VERSION)"' $(shell $(PKG_CONFIG) --cflags $(PKGS)) $(CFLAGS)
LDLIBS_ALL = $(shell $(PKG_CONFIG) --libs $(PKGS)) $(LDLIBS)
LDFLAGS_ALL = $(SANLDFLAGS) $(LDFLAGS)

LIB_OBJS = $(LIB_SRCS:%.c=$(B)/%.o) $(GEN_C:.c=.o) $(G)/reflect_orchd_set.o
# scripts/gen-dev-certs.sh rides inside the executable for `orchd dev --tls`.
CMD_OBJS = $(CMD_SRCS:%.c=$(B)/%.o) $(G)/gen_dev_certs_sh.o
UNIT_OBJS = $(UNIT_SRCS:%.c=$(B)/%.o)
LIBORCHD = $(B)/liborchd.a
ROLES = gateway scheduler worker

PROGS = $(B)/orchd $(B)/interop_server $(B)/interop_client $(B)/rpc_test \
	$(B)/echo_server $(B)/stream_client $(B)/store_cost
all: deps $(PROGS) $(addprefix $(B)/,$(ROLES))

# Missing packages are installed when we are root, otherwise the exact
# apt-get line is printed and the build stops.
deps:
	@if [ "$$(id -u)" -eq 0 ]; then scripts/install-deps.sh; else scripts/install-deps.sh --print; fi

$(LIBORCHD): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/orchd: $(CMD_OBJS) $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CMD_OBJS) $(LIBORCHD) $(LDLIBS_ALL)

$(addprefix $(B)/,$(ROLES)): $(B)/orchd
	ln -sf orchd $@

$(B)/interop_server: $(B)/tests/interop/interop_server.o $(B)/tests/serve.o \
		$(GEN_INTEROP_C:.c=.o) $(G)/reflect_interop_set.o $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/interop_client: $(B)/tests/interop/interop_client.o $(GEN_INTEROP_C:.c=.o) $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/rpc_test: $(B)/tests/integration/rpc_test.o $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/echo_server: $(B)/bench/echo_server.o $(B)/tests/serve.o $(GEN_BENCH_C:.c=.o) $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/stream_client: $(B)/bench/stream_client.o $(GEN_BENCH_C:.c=.o) $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/store_cost: $(B)/bench/store_cost.o $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/unit_tests: $(UNIT_OBJS) $(LIBORCHD)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs $(TEST_PKGS))

$(B)/%.o: %.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(G)/%.o: $(G)/%.c
	$(CC) $(CSTD) $(OPT) -MMD -MP -I$(G) $(shell $(PKG_CONFIG) --cflags libprotobuf-c) -c -o $@ $<

$(G)/%.pb-c.c $(G)/%.pb-c.h: proto/%.proto
	@mkdir -p $(G)
	$(PROTOC_C) -Iproto -I$(GRPC_PROTO_DIR) --c_out=$(G) $<

$(G)/%.pb-c.c $(G)/%.pb-c.h: $(GRPC_PROTO_DIR)/%.proto
	@mkdir -p $(G)
	$(PROTOC_C) -I$(GRPC_PROTO_DIR) --c_out=$(G) $<

# Descriptors for server reflection (lib/reflect.h), embedded at build
# time: a FileDescriptorSet with every import, then a C array of its bytes
# named after the file (od is in coreutils, so no extra build dependency).
REFLECT_SETS = \
	reflect_orchd_set \
	reflect_interop_set
$(G)/reflect_orchd_set.pb: $(addprefix proto/,$(PROTOS_OWN)) \
	$(addprefix $(GRPC_PROTO_DIR)/,$(PROTOS_SYS))
$(G)/reflect_interop_set.pb: $(addprefix $(GRPC_PROTO_DIR)/,$(PROTOS_INTEROP) \
	grpc/reflection/v1alpha/reflection.proto grpc/reflection/v1/reflection.proto)
$(REFLECT_SETS:%=$(G)/%.pb):
	@mkdir -p $(G)
	$(PROTOC) -Iproto -I$(GRPC_PROTO_DIR) --include_imports --descriptor_set_out=$@ $^

# EMBED_C writes its first prerequisite as a C array named after the stem.
EMBED_C = { echo '/* Generated from $(<F) by the Makefile; do not edit. */'; \
	  echo '\#include <stddef.h>'; echo '\#include <stdint.h>'; \
	  echo 'extern const uint8_t $*[];'; echo 'extern const size_t $*_len;'; \
	  echo 'const uint8_t $*[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; echo 'const size_t $*_len = sizeof $*;'; } >$@
$(REFLECT_SETS:%=$(G)/%.c): $(G)/%.c: $(G)/%.pb
	$(EMBED_C)
$(G)/gen_dev_certs_sh.c: $(G)/%.c: scripts/gen-dev-certs.sh
	@mkdir -p $(G)
	$(EMBED_C)

# Python stubs for the tests, generated from the same protos.
PYGEN = $(B)/py
pygen: $(PYGEN)/.stamp
# The Makefile is a prerequisite because it holds the list of protos.
$(PYGEN)/.stamp: Makefile $(addprefix proto/,$(PROTOS_OWN)) \
		$(addprefix $(GRPC_PROTO_DIR)/,$(PROTOS_SYS) $(PROTOS_INTEROP))
	@mkdir -p $(PYGEN)
	$(PROTOC) -Iproto -I$(GRPC_PROTO_DIR) --python_out=$(PYGEN) \
		--grpc_out=$(PYGEN) --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
		$(addprefix proto/,$(PROTOS_OWN)) \
		$(addprefix $(GRPC_PROTO_DIR)/,$(PROTOS_SYS) $(PROTOS_INTEROP))
	touch $@

# libFuzzer targets (tests/fuzz/fuzz_<name>.c, seeds in tests/fuzz/corpus/<name>/,
# an optional dictionary tests/fuzz/<name>.dict): lib/ and its generated
# protobuf code compiled again with $(FUZZCC) and the fuzzing sanitizers
# into their own tree and archive, so each target links what it uses.
# `make fuzz` fuzzes each target for FUZZ_SECONDS over a copy of its seeds
# (kept in $(FB)/corpus/<name>; crashes land in $(FB)/<name>-crash-*);
# `make fuzz-<name>` does one. `make fuzz-regress` (run by check) replays
# every committed corpus once, so a crash found once stays fixed.
FUZZ_TARGETS = \
	server \
	decode \
	progress \
	cli
FB = build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = $(CSTD) $(WARN) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -Ilib -I$(G) \
	-DORCHD_VERSION='"$(VERSION)"' $(shell $(PKG_CONFIG) --cflags $(PKGS))
FUZZ_LIB_OBJS = $(LIB_SRCS:%.c=$(FB)/%.o) $(patsubst $(G)/%.c,$(FB)/gen/%.o,$(GEN_C)) \
	$(FB)/gen/reflect_orchd_set.o
FUZZ_BINS = $(FUZZ_TARGETS:%=$(FB)/fuzz_%)

$(FB)/%.o: %.c | $(GEN_H)
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZ_CFLAGS) -c -o $@ $<

# Generated code: the sanitizers, not our warnings.
$(FB)/gen/%.o: $(G)/%.c
	@mkdir -p $(@D)
	$(FUZZCC) $(CSTD) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -I$(G) \
		$(shell $(PKG_CONFIG) --cflags libprotobuf-c) -c -o $@ $<

$(FB)/liborchd.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BINS): $(FB)/fuzz_%: $(FB)/tests/fuzz/fuzz_%.o $(FB)/liborchd.a
	$(FUZZCC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS_ALL)

fuzz: $(FUZZ_TARGETS:%=fuzz-%)

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: $(FB)/fuzz_%
	@mkdir -p $(FB)/corpus/$*
	cp tests/fuzz/corpus/$*/* $(FB)/corpus/$*/
	$(FB)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
		$(if $(wildcard tests/fuzz/$*.dict),-dict=tests/fuzz/$*.dict) \
		-artifact_prefix=$(FB)/$*- $(FB)/corpus/$*

fuzz-regress: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
		echo "$(FB)/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t"; \
		$(FB)/fuzz_$$t -runs=0 -timeout=10 tests/fuzz/corpus/$$t 2>$(FB)/regress-$$t.log || \
			{ cat $(FB)/regress-$$t.log; exit 1; }; \
	done

check: all $(B)/unit_tests pygen fuzz-regress
	$(B)/unit_tests
	B=$(B) PYTHON=$(PYTHON) tests/run.sh

# Benchmarks (bench/, docs/performance.md): installs the peers when we are
# root, builds the grpc++ peers, then runs each benchmark script.
GC = $(B)/gencpp
BENCH_CXXFLAGS = $(CXXSTD) -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -MMD -MP -I$(GC) \
	$(shell $(PKG_CONFIG) --cflags $(BENCH_CXX_PKGS) 2>/dev/null)
BENCH_CXXLIBS = $(shell $(PKG_CONFIG) --libs $(BENCH_CXX_PKGS) 2>/dev/null)
BENCH_GEN_CC = $(GC)/bench/v1/echo.pb.cc $(GC)/bench/v1/echo.grpc.pb.cc
GRPCPP_PROGS = \
	$(B)/grpcpp_async_server \
	$(B)/grpcpp_callback_server

bench:
	@if [ "$$(id -u)" -eq 0 ]; then scripts/install-deps.sh --all; fi
	$(MAKE) all $(GRPCPP_PROGS)
	B=$(B) bench/transport.sh
	B=$(B) bench/e2e.sh
	B=$(B) bench/footprint.sh
	B=$(B) bench/curves.sh
	B=$(B) bench/scaling.sh

$(GC)/%.pb.cc $(GC)/%.pb.h $(GC)/%.grpc.pb.cc $(GC)/%.grpc.pb.h: proto/%.proto
	@mkdir -p $(GC)
	$(PROTOC) -Iproto --cpp_out=$(GC) --grpc_out=$(GC) \
		--plugin=protoc-gen-grpc=$(GRPC_CPP_PLUGIN) $<

$(GC)/%.o: $(GC)/%.cc
	$(CXX) $(CXXSTD) -O2 -MMD -MP -I$(GC) -c -o $@ $<

$(B)/bench/grpcpp/%.o: bench/grpcpp/%.cc | $(BENCH_GEN_CC)
	@mkdir -p $(@D)
	$(CXX) $(BENCH_CXXFLAGS) -c -o $@ $<

$(B)/grpcpp_%: $(B)/bench/grpcpp/%.o $(BENCH_GEN_CC:.cc=.o)
	$(CXX) -o $@ $^ $(BENCH_CXXLIBS)

demo: all
	B=$(B) scripts/demo.sh

# install: the binary, its role symlinks (relative, so DESTDIR staging
# works) and the man page under $(DESTDIR)$(PREFIX). A gateway, scheduler
# or worker there that is not our symlink is left alone and stops the
# install: those are common names. uninstall removes only what install put.
install: all
	@for r in $(ROLES); do \
		f=$(DESTDIR)$(BINDIR)/$$r; \
		if { [ -e "$$f" ] || [ -L "$$f" ]; } && [ "$$(readlink "$$f")" != orchd ]; then \
			echo "install: $$f exists and is not orchd's; remove it first" >&2; exit 1; \
		fi; \
	done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(B)/orchd $(DESTDIR)$(BINDIR)/orchd
	for r in $(ROLES); do ln -sf orchd $(DESTDIR)$(BINDIR)/$$r; done
	install -m 644 docs/orchd.1 $(DESTDIR)$(MANDIR)/man1/orchd.1

uninstall:
	@for r in $(ROLES); do \
		f=$(DESTDIR)$(BINDIR)/$$r; \
		if [ -L "$$f" ] && [ "$$(readlink "$$f")" = orchd ]; then echo "rm -f $$f"; rm -f "$$f"; fi; \
	done
	rm -f $(DESTDIR)$(BINDIR)/orchd $(DESTDIR)$(MANDIR)/man1/orchd.1

.PHONY: uninstall

clean:
	rm -rf build build-san build-debug $(FB)

.PHONY: all deps check bench demo install clean pygen fuzz fuzz-regress \
	$(FUZZ_TARGETS:%=fuzz-%)
.DELETE_ON_ERROR:
.SECONDARY:

-include $(shell find $(B) $(FB) -name '*.d' 2>/dev/null)
