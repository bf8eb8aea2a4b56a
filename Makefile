# ferry — GNU make build. `make` builds, `make check` sets up and runs every test,
# `make demo` sets up and runs the demo. See README.md.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/ferry
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc/ferry
STATEDIR   ?= /var/lib/ferry
RUNDIR     ?= /run/ferry
LIBDIR     ?= $(PREFIX)/lib
# the SPANK plugin (src/spank/): built when Slurm's headers are there (libslurm-dev)
SPANK_H    ?= /usr/include/slurm/spank.h
SPANKDIR   ?= $(LIBDIR)/ferry
VERSION    := 0.1.0

CC      ?= gcc
CRIU    ?= $(shell command -v criu 2>/dev/null || echo /usr/local/sbin/criu)
BUILD   ?= build
SAN     ?=

WARN    := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wno-unused-parameter
DEFS    := -D_GNU_SOURCE -DFERRY_VERSION='"$(VERSION)"' -DFERRY_SYSCONFDIR='"$(SYSCONFDIR)"' \
           -DFERRY_LIBEXECDIR='"$(LIBEXECDIR)"' -DFERRY_STATEDIR='"$(STATEDIR)"' \
           -DFERRY_RUNDIR='"$(RUNDIR)"' -DFERRY_BINDIR='"$(BINDIR)"'
ifeq ($(SAN),)
OPT     := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDOPT   := -pie -Wl,-z,relro,-z,now -Wl,--as-needed
else
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SAN) -fno-sanitize-recover=all
LDOPT   := -fsanitize=$(SAN)
endif
# FAULT_INJECTION=1: the test build of ferryd's fault points (src/ferryd/fault.h), only ever in
# build-fault/ (`make fault-build`), never installed: `make install` refuses it.
FAULT_INJECTION ?=
ifneq ($(FAULT_INJECTION),)
DEFS    += -DFERRY_FAULT_INJECTION
endif
CFLAGS  ?=
CFLAGS  += -std=gnu11 $(WARN) $(OPT) $(DEFS) -Isrc/lib -MMD -MP
LDFLAGS += $(LDOPT)

LIB_SRCS     := $(sort $(wildcard src/lib/*.c))
FERRY_SRCS   := $(sort $(wildcard src/ferry/*.c))
STARTER_SRCS := $(sort $(wildcard src/starter/*.c))
FERRYD_SRCS  := $(sort $(wildcard src/ferryd/*.c))
XFER_SRCS    := $(sort $(wildcard src/xfer/*.c))
RELAY_SRCS   := $(sort $(wildcard src/relay/*.c))
CONF_SRCS    := $(sort $(wildcard src/conf/*.c))
CRIU_SRCS    := $(sort $(wildcard src/criu/*.c))
NET_SRCS     := $(sort $(wildcard src/net/*.c))
PLAN_SRCS    := $(sort $(wildcard src/plan/*.c))
# The setuid starter links only the small core it needs: no network, no archive code (the
# transfer's tar is ferry-xfer's, a helper without privileges), no CRIU client (libcriu and
# protobuf-c are ferry-criu's, a helper of the CRIU bundle run after the permanent drop), no
# JSON (the CNI conflists and plugins are ferry-net's, a helper without the setuid bit), no image
# probe (the image's headers are read by ferry-plan, which decodes the caller's request), no
# ferry.conf parser (ferry-conf parses it; the starter decodes what it sends: config_policy.c).
STARTER_LIB  := error util fs privs config_policy request names instance manifest criu_log xfer_ctl \
                net
UNIT_SRCS    := $(sort $(wildcard tests/unit/*_test.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJS     := $(call obj,$(LIB_SRCS))
STARTER_LIB_OBJS := $(call obj,$(addprefix src/lib/,$(addsuffix .c,$(STARTER_LIB))))
UNIT_BINS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

FERRY_LIBS   := -lcap -lcrypto -ljson-c -larchive -lzstd
STARTER_LIBS := -lcap -lcrypto
CRIU_LIBS    := -lcriu -lcrypto -larchive -lzstd
XFER_LIBS    := -lcrypto -larchive -lzstd
RELAY_LIBS   := -lcrypto -lzstd
NET_LIBS     := -ljson-c -lcap -lcrypto -lzstd

.SECONDARY:
.PHONY: fault-build faults zdtm bench bench-smoke all clean install uninstall setup check unit unit-san fuzz fuzz-long demo soak lint format format-check setuid-size
all: $(BUILD)/ferry $(BUILD)/ferry-starter $(BUILD)/ferryd $(BUILD)/ferry-xfer $(BUILD)/ferry-relay $(BUILD)/ferry-conf $(BUILD)/ferry-criu \
       $(BUILD)/ferry-net $(BUILD)/ferry-plan $(BUILD)/ferry-reaper $(BUILD)/ferry-rsh

# spank_ferry.so, Slurm's --ferry-checkpoint (ferry-slurm(7)): loaded into sbatch, srun and
# slurmstepd, so it links nothing but libc and the libc-only ckspec.c and duration.c, exports
# only what Slurm looks up, and is never built with sanitizers. The spank_* and slurm_* functions it calls are
# the loading program's (no -lslurm, no -z defs).
ifneq ($(wildcard $(SPANK_H)),)
all: $(BUILD)/spank_ferry.so
endif
$(BUILD)/spank_ferry.so: src/spank/spank_ferry.c src/lib/ckspec.c src/lib/duration.c src/lib/ckspec.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIC \
		-fvisibility=hidden -Isrc/lib -shared -Wl,-z,relro,-z,now -o $@ \
		src/spank/spank_ferry.c src/lib/ckspec.c src/lib/duration.c

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libferry.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ferry: $(call obj,$(FERRY_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ $(FERRY_LIBS)

$(BUILD)/ferryd: $(call obj,$(FERRYD_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ $(FERRY_LIBS)

$(BUILD)/ferry-starter: $(call obj,$(STARTER_SRCS)) $(STARTER_LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(STARTER_LIBS)

$(BUILD)/ferry-xfer: $(call obj,$(XFER_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ $(XFER_LIBS)

# ferry-relay, a transfer's handshake and records (src/relay/): run by the starter as the user,
# installed 0711 so that the user cannot trace it (it holds the cluster key, then the session's).
$(BUILD)/ferry-relay: $(call obj,$(RELAY_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ $(RELAY_LIBS)

# ferry-conf, the parser of ferry.conf for the starter (src/conf/): run by the starter as the
# user, installed 0711 so that the user cannot trace it and change the policy it sends.
$(BUILD)/ferry-conf: $(call obj,$(CONF_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/ferry-criu: $(call obj,$(CRIU_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ $(CRIU_LIBS)

$(BUILD)/ferry-net: $(call obj,$(NET_SRCS)) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ $(NET_LIBS)

# ferry-plan, the plan child's side of the starter (src/plan/): it shares the starter's request
# checks and mount sources (check.c, mounts.c) and runs as the caller, without the setuid bit,
# installed 0711 so that the caller cannot trace it and change the plan root acts on.
PLAN_OBJS    := $(call obj,$(PLAN_SRCS) src/starter/check.c src/starter/mounts.c)
$(BUILD)/ferry-plan: $(PLAN_OBJS) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcap -lcrypto

# net_test checks ferry-net's reading of the conflists too
$(BUILD)/tests/net_test: $(BUILD)/obj/tests/unit/net_test.o $(BUILD)/obj/src/net/cni.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS) -lcriu

# ferryd_report_test checks ferryd's report times (src/ferryd/report.c)
$(BUILD)/tests/ferryd_report_test: $(BUILD)/obj/tests/unit/ferryd_report_test.o $(BUILD)/obj/src/ferryd/report.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS) -lcriu

# The root of a checkpointable instance's tree (src/reaper/reaper.c): static, since it runs inside
# containers from the CRIU bundle, with no loader or library of the image's.
REAPER_SRCS  := src/reaper/reaper.c
$(BUILD)/ferry-reaper: $(REAPER_SRCS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -static \
		-o $@ $(REAPER_SRCS)

# The launcher agent of MPI jobs (src/rsh/rsh.c): static, as ferry-reaper, from the CRIU bundle.
$(BUILD)/ferry-rsh: src/rsh/rsh.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -static \
		-o $@ src/rsh/rsh.c

# fit_test checks the look before a migration's freeze (src/ferryd/fit.c) and its children
$(BUILD)/tests/fit_test: $(BUILD)/obj/tests/unit/fit_test.o $(BUILD)/obj/src/ferryd/fit.o \
		$(BUILD)/obj/src/ferryd/ask.o $(BUILD)/obj/src/ferryd/user.o $(BUILD)/obj/src/ferryd/link.o \
		$(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS)

# ask_test checks what a start on another node may ask (src/ferryd/ask.c)
$(BUILD)/tests/ask_test: $(BUILD)/obj/tests/unit/ask_test.o $(BUILD)/obj/src/ferryd/ask.o \
		$(BUILD)/obj/src/ferryd/user.o $(BUILD)/obj/src/ferryd/link.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS)

# limits_test checks the limits of a start ferryd runs (src/ferryd/limits.c)
$(BUILD)/tests/limits_test: $(BUILD)/obj/tests/unit/limits_test.o $(BUILD)/obj/src/ferryd/limits.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS)

# journal_test reads and writes ferryd's records (src/ferryd/journal.c)
$(BUILD)/tests/journal_test: $(BUILD)/obj/tests/unit/journal_test.o $(BUILD)/obj/src/ferryd/journal.o \
		$(BUILD)/obj/src/ferryd/user.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(FERRY_LIBS) -lcriu

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

unit-san:
	$(MAKE) BUILD=build-san SAN=address,undefined unit

# libFuzzer targets of every parser of untrusted input, each run FUZZ_SECONDS (default 10)
fuzz:
	tests/run-fuzz.sh

# every fuzz target for 10 million executions (hours); grows tests/fuzz/corpus/
fuzz-long:
	FUZZ_RUNS=$${FUZZ_RUNS:-10000000} tests/run-fuzz.sh

install: all
	@if [ -n "$(FAULT_INJECTION)" ]; then echo "make install: not a fault-injection build" >&2; exit 1; fi
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR) \
		$(DESTDIR)$(SYSCONFDIR)/network $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(STATEDIR) \
		$(DESTDIR)$(STATEDIR)/mnt
	install -m 0755 $(BUILD)/ferry $(DESTDIR)$(BINDIR)/ferry
	install -d -m 0755 $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/ferryd $(DESTDIR)$(PREFIX)/sbin/ferryd
	install -o root -g root -m 4755 $(BUILD)/ferry-starter $(DESTDIR)$(LIBEXECDIR)/ferry-starter
	install -o root -g root -m 0711 $(BUILD)/ferry-xfer $(DESTDIR)$(LIBEXECDIR)/ferry-xfer
	install -o root -g root -m 0711 $(BUILD)/ferry-relay $(DESTDIR)$(LIBEXECDIR)/ferry-relay
	install -o root -g root -m 0711 $(BUILD)/ferry-conf $(DESTDIR)$(LIBEXECDIR)/ferry-conf
	install -o root -g root -m 0755 $(BUILD)/ferry-net $(DESTDIR)$(LIBEXECDIR)/ferry-net
	install -o root -g root -m 0711 $(BUILD)/ferry-plan $(DESTDIR)$(LIBEXECDIR)/ferry-plan
	scripts/criu-bundle.sh $(DESTDIR)$(LIBEXECDIR)/criu $(CRIU) $(BUILD)/ferry-criu
	install -o root -g root -m 0755 $(BUILD)/ferry-reaper $(DESTDIR)$(LIBEXECDIR)/criu/ferry-reaper
	install -o root -g root -m 0755 $(BUILD)/ferry-rsh $(DESTDIR)$(LIBEXECDIR)/criu/ferry-rsh
	test -e $(DESTDIR)$(SYSCONFDIR)/ferry.conf || \
		install -o root -g root -m 0644 etc/ferry.conf $(DESTDIR)$(SYSCONFDIR)/ferry.conf
	# drop-ins (ferry.conf(5)): the directory, never the files in it
	install -d -o root -g root -m 0755 $(DESTDIR)$(SYSCONFDIR)/ferry.conf.d
	for f in etc/network/*.conflist; do \
		test -e $(DESTDIR)$(SYSCONFDIR)/network/$$(basename $$f) || \
			install -o root -g root -m 0644 $$f $(DESTDIR)$(SYSCONFDIR)/network/; \
	done
	test -e $(DESTDIR)$(SYSCONFDIR)/cluster.key || \
		(umask 077 && head -c 32 /dev/urandom > $(DESTDIR)$(SYSCONFDIR)/cluster.key)
	chmod 0600 $(DESTDIR)$(SYSCONFDIR)/cluster.key
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 docs/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man7
	install -m 0644 docs/man/*.7 $(DESTDIR)$(MANDIR)/man7/
	# the SPANK plugin, when built: plugstack.conf names it by this path (ferry-slurm(7))
	if [ -e $(BUILD)/spank_ferry.so ]; then \
		install -d -m 0755 $(DESTDIR)$(SPANKDIR) && \
		install -o root -g root -m 0644 $(BUILD)/spank_ferry.so $(DESTDIR)$(SPANKDIR)/spank_ferry.so && \
		install -o root -g root -m 0644 etc/slurm/cli_filter.lua $(DESTDIR)$(SPANKDIR)/cli_filter.lua; \
	fi


uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ferry $(DESTDIR)$(LIBEXECDIR)/ferry-starter $(DESTDIR)$(LIBEXECDIR)/ferry-xfer $(DESTDIR)$(LIBEXECDIR)/ferry-plan \
		$(DESTDIR)$(LIBEXECDIR)/ferry-relay $(DESTDIR)$(LIBEXECDIR)/ferry-conf \
		$(DESTDIR)$(LIBEXECDIR)/ferry-net $(DESTDIR)$(MANDIR)/man1/ferry*.1 \
		$(DESTDIR)$(MANDIR)/man7/ferry-slurm.7 $(DESTDIR)$(MANDIR)/man7/ferry-mpi.7 $(DESTDIR)$(SPANKDIR)/spank_ferry.so \
		$(DESTDIR)$(SPANKDIR)/cli_filter.lua

setup:
	scripts/setup.sh

# ferryd with fault points (src/ferryd/fault.h), in build-fault/ only: the fault matrix runs it
# from there on the simulated nodes, with the installed starter. `make faults`: the whole matrix
# (tests/integration/faults.bats with FERRY_FAULTS=all); the test command runs a slice of it.
fault-build:
	$(MAKE) BUILD=build-fault FAULT_INJECTION=1 build-fault/ferryd

faults: setup
	$(MAKE) all
	$(MAKE) install
	$(MAKE) fault-build
	FERRY_FAULTS=all bats tests/integration/faults.bats

# The whole test suite, as CI runs it: set up, build, install, unit tests (plain and
# ASan+UBSan), integration tests; ends with "N passed, N failed".
check: setup
	$(MAKE) all
	$(MAKE) install
	tests/run-all.sh

demo: setup
	$(MAKE) all
	$(MAKE) install
	scripts/demo.sh

# The soak: 200 migrations back and forth (SOAK_N to change it), both modes, then the counts of
# what they may leave behind, compared with before. Not part of check, which runs the same file
# with 20 (tests/integration/soak.bats). About 10 minutes.
soak: setup
	$(MAKE) all
	$(MAKE) install
	SOAK_N=$${SOAK_N:-200} bats tests/integration/soak.bats

# The benchmarks (not part of check; hours): the paper's evaluation on two simulated nodes, with
# bench/REPORT.md, bench/results/ and bench/plots/ as the outcome. See bench/run.sh --help.
bench: setup
	$(MAKE) all
	$(MAKE) install
	bench/run.sh

# A tiny run of the same harness with checks of what it measured (part of check, through
# tests/integration/bench.bats).
bench-smoke: setup
	$(MAKE) all
	$(MAKE) install
	bats tests/integration/bench.bats

# CRIU's zdtm static tests, each through ferry as an ordinary user (launch, dump, restart, check):
# not part of check (a representative slice is, through tests/integration/zdtm.bats). About 20
# minutes; the per-test results go to /var/tmp/ferry-zdtm/results.txt. See tests/zdtm/README.md.
zdtm: setup
	$(MAKE) all
	$(MAKE) install
	tests/zdtm/run.sh

lint:
	scripts/lint.sh

# the setuid binary's code lines against their budget (scripts/setuid-size.sh); also in lint
setuid-size:
	@scripts/setuid-size.sh $(sort $(STARTER_SRCS) $(wildcard src/starter/*.h) \
		$(addprefix src/lib/,$(addsuffix .c,$(STARTER_LIB))))

format:
	clang-format -i src/spank/*.c $(LIB_SRCS) $(FERRY_SRCS) $(STARTER_SRCS) $(FERRYD_SRCS) $(XFER_SRCS) $(RELAY_SRCS) $(CONF_SRCS) $(CRIU_SRCS) $(NET_SRCS) $(PLAN_SRCS) $(REAPER_SRCS) src/rsh/rsh.c src/*/*.h $(UNIT_SRCS)

format-check:
	clang-format --dry-run --Werror src/spank/*.c $(LIB_SRCS) $(FERRY_SRCS) $(STARTER_SRCS) $(FERRYD_SRCS) $(XFER_SRCS) $(RELAY_SRCS) $(CONF_SRCS) $(CRIU_SRCS) $(NET_SRCS) $(PLAN_SRCS) $(REAPER_SRCS) src/rsh/rsh.c src/*/*.h $(UNIT_SRCS)

clean:
	rm -rf build build-san build-fuzz build-fault

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
