# control/runtime/: edgehop-runc, the OCI runtime Docker runs for restored
# containers (runc, except that a staged create is a restore; ehrt.h).

RT_OBJS := $(OUT)/obj/control/runtime/ehrt.o
$(OUT)/obj/control/runtime/%.o: CFLAGS += -Icontrol/runtime
$(OUT)/obj/control/runtime/ehrt.o $(OUT)/obj/control/runtime/main.o: control/runtime/ehrt.h

PROGS += $(OUT)/bin/edgehop-runc
$(OUT)/bin/edgehop-runc: $(OUT)/obj/control/runtime/main.o $(RT_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@.tmp
	$(Q)mv -f $@.tmp $@   # a new inode: a node running it from 9p keeps its own

UNIT_TESTS += $(OUT)/tests/unit_runtime
$(OUT)/obj/tests/unit/test_runtime.o: CFLAGS += -Icontrol/runtime
$(OUT)/obj/tests/unit/test_runtime.o: control/runtime/ehrt.h
$(OUT)/tests/unit_runtime: $(OUT)/obj/tests/unit/test_runtime.o $(RT_OBJS) \
		| $(OUT)/tests $(OUT)/bin/edgehop-runc
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@
