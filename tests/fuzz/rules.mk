# tests/fuzz/: libFuzzer targets (clang -fsanitize=fuzzer,address,undefined) for
# every parser of network input. fuzz_layer and fuzz_peer_frames are built by
# control/migr/rules.mk and control/peer/rules.mk. tests/fuzz/run builds and
# runs them all (the fuzz tier of tests/run-all; make fuzz runs them longer).

FUZZ_TARGETS := fuzz_svc fuzz_mud_answer fuzz_logrepo_event fuzz_proto fuzz_agent_assoc fuzz_layer \
	fuzz_peer_frames
FUZZ_BINS    := $(addprefix $(OUT)/fuzz/,$(FUZZ_TARGETS))
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Ibpf -Icontrol/common -Icontrol/svc -Ilogrepo -Imud

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)

$(OUT)/fuzz/fuzz_svc: tests/fuzz/fuzz_svc.c control/svc/svc_state.c control/common/eh_digest.c \
		control/common/eh_parse.c control/common/eh_wire.c $(wildcard control/svc/*.h control/common/*.h) bpf/edgehop_proto.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -lcrypto -o $@

# The MUD's parts but main.c.
$(OUT)/fuzz/fuzz_mud_answer: tests/fuzz/fuzz_mud_answer.c $(filter-out mud/main.c,$(wildcard mud/*.c)) \
		$(wildcard control/common/*.c mud/*.h control/common/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -lcrypto -lmnl -lm -o $@

$(OUT)/fuzz/fuzz_logrepo_event: tests/fuzz/fuzz_logrepo_event.c $(wildcard logrepo/report_*.c) \
		control/common/eh_log.c control/common/eh_parse.c control/common/eh_stats.c \
		$(wildcard logrepo/*.h control/common/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -ljansson -lm -o $@

$(OUT)/fuzz/fuzz_proto: tests/fuzz/fuzz_proto.c control/common/eh_digest.c \
		control/common/eh_parse.c control/common/eh_wire.c $(wildcard control/common/*.h) \
		bpf/edgehop_proto.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -lcrypto -o $@

$(OUT)/fuzz/fuzz_agent_assoc: tests/fuzz/fuzz_agent_assoc.c control/agent/assoc_wire.c \
		control/common/eh_wire.c control/agent/assoc_wire.h control/common/eh_wire.h \
		bpf/edgehop_proto.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Icontrol/agent $(filter %.c,$^) -o $@
