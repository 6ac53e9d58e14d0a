# control/migr/: the migration steps the agent links (MIGR_OBJS, used by
# control/rules.mk).

# layer tar
MIGR_OBJS += $(OUT)/obj/control/migr/layer.o
$(OUT)/obj/control/migr/%.o: CFLAGS += -Icontrol/migr
$(OUT)/obj/control/migr/layer.o: control/migr/layer.h

UNIT_TESTS += $(OUT)/tests/unit_layer
$(OUT)/obj/tests/unit/test_layer.o: CFLAGS += -Icontrol/migr
$(OUT)/obj/tests/unit/test_layer.o: control/migr/layer.h
$(OUT)/tests/unit_layer: $(OUT)/obj/tests/unit/test_layer.o \
		$(OUT)/obj/control/migr/layer.o | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -larchive -lcrypto -lpthread -o $@

# Not part of make test: clang -fsanitize=fuzzer; run it by hand (docs/layer.md).
$(OUT)/fuzz/fuzz_layer: tests/fuzz/fuzz_layer.c control/migr/layer.c control/migr/layer.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Icontrol/migr \
		-fsanitize=fuzzer,address,undefined $(filter %.c,$^) -larchive -o $@

# migration engine (migr.c over the Docker client, the peer channel and the layer tar)
MIGR_OBJS += $(OUT)/obj/control/migr/migr.o $(OUT)/obj/control/migr/svcprobe.o
$(OUT)/obj/control/migr/migr.o: CFLAGS += -Icontrol/docker -Icontrol/peer -Icontrol/runtime
$(OUT)/obj/control/migr/migr.o $(OUT)/obj/control/migr/svcprobe.o: \
	$(wildcard control/migr/*.h control/docker/*.h control/peer/*.h)

# checkpoint around containerd
MIGR_OBJS += $(OUT)/obj/control/migr/ckpt.o
$(OUT)/obj/control/migr/ckpt.o: control/migr/ckpt.h

UNIT_TESTS += $(OUT)/tests/unit_ckpt
$(OUT)/obj/tests/unit/test_ckpt.o: CFLAGS += -Icontrol/migr
$(OUT)/obj/tests/unit/test_ckpt.o: control/migr/ckpt.h
$(OUT)/tests/unit_ckpt: $(OUT)/obj/tests/unit/test_ckpt.o \
		$(OUT)/obj/control/migr/ckpt.o | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@.tmp
	$(Q)mv -f $@.tmp $@   # a new inode: a node running it from 9p keeps its own

# the image stream minus the layers ES-y holds (C-Migr, method auto)
MIGR_OBJS += $(OUT)/obj/control/migr/tarfilter.o
$(OUT)/obj/control/migr/tarfilter.o: control/migr/tarfilter.h

UNIT_TESTS += $(OUT)/tests/unit_tarfilter
$(OUT)/obj/tests/unit/test_tarfilter.o: CFLAGS += -Icontrol/migr
$(OUT)/obj/tests/unit/test_tarfilter.o: control/migr/tarfilter.h
$(OUT)/tests/unit_tarfilter: $(OUT)/obj/tests/unit/test_tarfilter.o \
		$(OUT)/obj/control/migr/tarfilter.o | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -larchive -o $@
