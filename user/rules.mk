# user/: the AP dataplane's loader and command, and the library the controller reuses.
EH_DP_OBJS := $(OUT)/obj/user/eh_dp.o $(OUT)/obj/user/eh_replay.o

PROGS += $(OUT)/bin/edgehop-ap
$(OUT)/bin/edgehop-ap: $(OUT)/obj/user/edgehop_ap.o $(EH_DP_OBJS) $(EH_COMMON) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) -lcrypto -o $@

UNIT_TESTS += $(OUT)/tests/bpf_dataplane
# The tests build and read frames in byte arrays at their wire offsets (the IP
# header at 14, as the kernel hands them to the programs): UBSan's alignment
# check would stop at each header (make SAN=1), the rest of it stays on.
$(OUT)/obj/tests/unit/bpf_dataplane.o: CFLAGS += $(if $(SAN_FLAGS),-fno-sanitize=alignment)
$(OUT)/tests/bpf_dataplane: $(OUT)/obj/tests/unit/bpf_dataplane.o $(EH_DP_OBJS) $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) -lcrypto -o $@

# The fuzz target of the programs (bpf tier): random and mutated frames, an oracle.
UNIT_TESTS += $(OUT)/tests/bpf_fuzz
$(OUT)/tests/bpf_fuzz: $(OUT)/obj/tests/unit/bpf_fuzz.o $(EH_DP_OBJS) $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) -lcrypto -o $@
