# control/nl/: rtnetlink through libmnl (netem, routes) for edgehop-agent.
# control/rules.mk links NL_OBJS into edgehop-agent (with -lmnl).
NL_OBJS := $(OUT)/obj/control/nl/eh_nl.o
$(NL_OBJS): CFLAGS += -Icontrol/nl
$(NL_OBJS): control/nl/eh_nl.h

UNIT_TESTS += $(OUT)/tests/unit_nl
$(OUT)/obj/tests/unit/test_nl.o: CFLAGS += -Icontrol/nl
$(OUT)/obj/tests/unit/test_nl.o: control/nl/eh_nl.h
$(OUT)/tests/unit_nl: $(OUT)/obj/tests/unit/test_nl.o $(NL_OBJS) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lmnl -o $@
