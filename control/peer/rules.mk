# control/peer/: the agents' peer channel (TLS 1.3 + PSK, JSON messages, zstd streams).
# The agent links PEER_OBJS (control/rules.mk); docs/peer.md.

PEER_OBJS := $(OUT)/obj/control/peer/peer.o
PEER_LIBS := -lssl -lcrypto -ljansson -lzstd -lpthread
PEER_HDRS := control/peer/peer.h control/peer/peer_wire.h

$(PEER_OBJS): CFLAGS += -Icontrol/peer
$(PEER_OBJS): $(PEER_HDRS)

UNIT_TESTS += $(OUT)/tests/unit_peer
$(OUT)/obj/tests/unit/test_peer.o: CFLAGS += -Icontrol/peer
$(OUT)/obj/tests/unit/test_peer.o: $(PEER_HDRS)

$(OUT)/tests/unit_peer: $(OUT)/obj/tests/unit/test_peer.o $(PEER_OBJS) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(PEER_LIBS) -o $@

# Not part of make test (docs/peer.md): clang libFuzzer on the frame parser.
FUZZ_CC ?= clang
PEER_FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -DPEER_FUZZ -D_GNU_SOURCE \
	-Icontrol/peer -Icontrol/common
.PHONY: fuzz-peer
fuzz-peer: $(OUT)/fuzz/fuzz_peer_frames
$(OUT)/fuzz/fuzz_peer_frames: tests/fuzz/fuzz_peer_frames.c control/peer/peer.c $(PEER_HDRS)
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(PEER_FUZZ_FLAGS) tests/fuzz/fuzz_peer_frames.c control/peer/peer.c \
		$(PEER_LIBS) -o $@
