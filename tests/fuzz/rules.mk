# tests/fuzz/: libFuzzer targets (clang -fsanitize=fuzzer,address,undefined) for
# every parser of network input. fuzz_layer and fuzz_peer_frames are built by
# control/migr/rules.mk and control/peer/rules.mk. tests/fuzz/run builds and
# runs them all (the fuzz tier of tests/run-all; make fuzz runs them longer).

FUZZ_TARGETS := fuzz_svc fuzz_mud_answer fuzz_logrepo_event fuzz_proto fuzz_agent_assoc fuzz_layer \
	fuzz_peer_frames
FUZZ_BINS    := $(addprefix $(OUT)/fuzz/,$(FUZZ_TARGETS))
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Ibpf -Ilogrepo -Icontrol/svc -Imud

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)

$(OUT)/fuzz/fuzz_svc: tests/fuzz/fuzz_svc.c control/svc/svc_state.c control/svc/eh_digest.c \
		$(wildcard control/svc/*.h) bpf/edgehop_proto.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -lcrypto -o $@

$(OUT)/fuzz/fuzz_mud_answer: tests/fuzz/fuzz_mud_answer.c mud/mud.c mud/mud_route.c \
		control/svc/eh_digest.c logrepo/eh_log.c $(wildcard mud/*.h logrepo/*.h control/svc/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) tests/fuzz/fuzz_mud_answer.c mud/mud_route.c \
		control/svc/eh_digest.c logrepo/eh_log.c -lcrypto -lmnl -lm -o $@

$(OUT)/fuzz/fuzz_logrepo_event: tests/fuzz/fuzz_logrepo_event.c logrepo/eh_log.c logrepo/lr_report.c \
		$(wildcard logrepo/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -ljansson -lm -o $@

$(OUT)/fuzz/fuzz_proto: tests/fuzz/fuzz_proto.c logrepo/eh_log.c control/svc/eh_digest.c \
		control/svc/svc_state.c $(wildcard logrepo/*.h control/svc/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -lcrypto -o $@

$(OUT)/fuzz/fuzz_agent_assoc: tests/fuzz/fuzz_agent_assoc.c control/agent/assoc_wire.c \
		control/agent/assoc_wire.h bpf/edgehop_proto.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Icontrol/agent $(filter %.c,$^) -o $@
