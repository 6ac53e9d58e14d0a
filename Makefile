# edgehop — top-level build.
#
#   make                build everything under build/
#   make test           install what the tests need, build, run every test tier
#   make fuzz           every libFuzzer target for FUZZ_SECONDS (default 300) each
#   make run            the main job: the paper's experiment on the VM testbed (scripts/run-paper)
#   make demo           the handoff scenario in namespaces on this host (scripts/run-demo)
#   make bench          the dataplane benchmark (tests/bench/run); make bench-cutover: cut-over of 1, 5, 20 MUDs
#   make bench-vm       the same dataplane benchmark between two nodes of the VM testbed (tests/bench/run-vm)
#   make load RADIO=<if> WAN=<if> VIP=<ipv4>:<port> [PIN=/sys/fs/bpf/edgehop] [CONFIG=file]
#   make unload RADIO=<if> WAN=<if> [PIN=...]
#   make V=1            show full commands
#   make SAN=1          the userspace programs and unit tests with ASan+UBSan, under
#                       build-san/ (BPF objects as usual); tests/run-all san runs them
#
# Each role folder adds its programs through a rules.mk fragment (see user/rules.mk).

# SAN=1: a second build tree whose programs abort on the first AddressSanitizer,
# LeakSanitizer or UBSan report (the san tier of tests/run-all runs the unit and
# namespace suites against it: EDGEHOP_BUILD=build-san).
SAN       ?= 0
ifeq ($(SAN),1)
OUT       := build-san
else
OUT       := build
endif
CLANG     ?= clang
CC        ?= gcc
BPFTOOL   ?= /usr/sbin/bpftool
ARCH      := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

CFLAGS    ?= -O2 -g
CFLAGS    += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -I$(OUT) -Ibpf -Iuser -Icontrol/common
LDFLAGS   ?=
# edgehop-svc is static (it runs as PID 1 of any image); ASan has no static runtime.
STATIC    := -static
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS    += $(SAN_FLAGS)
LDFLAGS   += $(SAN_FLAGS)
STATIC    :=
endif

# -mcpu=v3: 32-bit atomics (the per-MUD flag bits) need BPF ISA v3 (kernel >= 5.12).
# clang -target bpf does not search the multiarch include dir (asm/types.h).
CLANG_BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ibpf \
	$(if $(MULTIARCH),-idirafter /usr/include/$(MULTIARCH)) $(CLANG_BPF_SYS_INCLUDES)

LIBBPF_LIBS  := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(patsubst $(abspath $(OUT))/%,%,$(2))";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all clean test test-vagrant load unload deps bench bench-migr run demo

# Filled by the rules.mk fragments.
PROGS      :=
UNIT_TESTS :=
# The code several programs link (control/common/rules.mk builds it).
EH_COMMON  := $(OUT)/obj/control/common/libeh_common.a

all: build-all

$(OUT) $(OUT)/bpf $(OUT)/obj $(OUT)/bin $(OUT)/tests:
	$(Q)mkdir -p $@

# --- BPF objects and skeletons -------------------------------------------
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o | $(OUT)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# --- userspace ---------------------------------------------------------------
HDRS := $(wildcard bpf/*.h user/*.h control/*.h control/common/*.h mud/*.h logrepo/*.h tests/unit/*.h)

$(OUT)/obj/%.o: %.c $(HDRS) $(BPF_SKELS) | $(OUT)/obj
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# control/<part>/rules.mk first: they define the object lists (DK_OBJS, PEER_OBJS...)
# that control/rules.mk links into edgehop-agent.
include $(wildcard control/*/rules.mk) $(wildcard */rules.mk tests/*/rules.mk)

build-all: $(BPF_OBJS) $(BPF_SKELS) $(PROGS) $(UNIT_TESTS)

# --- commands ------------------------------------------------------------------
# RADIO, WAN, VIP, PIN (and RING_BYTES) may come from a config file of
# "NAME = value" lines; the command line overrides it.
CONFIG ?= /etc/edgehop/ap.conf
-include $(CONFIG)
PIN ?= /sys/fs/bpf/edgehop
load: $(OUT)/bin/edgehop-ap
	$(Q)$(OUT)/bin/edgehop-ap load --radio "$(RADIO)" --wan "$(WAN)" --vip "$(VIP)" --pin "$(PIN)" $(if $(RING_BYTES),--ring-bytes $(RING_BYTES))

unload: $(OUT)/bin/edgehop-ap
	$(Q)$(OUT)/bin/edgehop-ap unload --radio "$(RADIO)" --wan "$(WAN)" --pin "$(PIN)"

deps:
	$(Q)./scripts/install-deps.sh

test:
	$(Q)./tests/run-all

# The VM suites again, on the same nodes brought up through Vagrant + libvirt.
test-vagrant:
	$(Q)./tests/run-all vagrant

# The main job: C-Migr and P-Migr on the VM testbed with their report (README).
run:
	$(Q)./scripts/install-deps.sh --no-vagrant
	$(Q)$(MAKE) --no-print-directory build-all
	$(Q)./scripts/run-paper $(RUN_ARGS)

# The dataplane's handoff scenario in namespaces on this host, in ~30 s (no VMs).
demo:
	$(Q)./scripts/install-deps.sh --no-vagrant
	$(Q)$(MAKE) --no-print-directory build-all
	$(Q)./scripts/run-demo $(RUN_ARGS)

# The fuzz tier of make test runs each target 20 s; this runs them longer.
FUZZ_SECONDS ?= 300
.PHONY: fuzz
fuzz:
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/fuzz/run

bench: build-all
	$(Q)./tests/bench/run

# The dataplane benchmark on the VM testbed (virtio-net, native XDP): docs/bench.md.
.PHONY: bench-vm
bench-vm: build-all
	$(Q)./tests/bench/run-vm

# Cut-over of 1, 5 and 20 MUDs at once (docs/bench.md; the ns tier's namespaces).
.PHONY: bench-cutover
bench-cutover: build-all
	$(Q)./tests/bench/cutover

# Migration paths (Docker, Podman, CRIU, C-/P-Migr) on the VM testbed: docs/bench.md, "Migration benchmark".
bench-migr: build-all
	$(Q)./tests/bench/migr/run

clean:
	$(call msg,CLEAN,$(OUT))
	$(Q)rm -rf $(OUT)
