# logrepo/: the event log repository and its report.

# The report's files (report_*.c): reading, computing, printing, plotting.
LR_REPORT_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard logrepo/report_*.c))
LOGREPO_OBJS := $(OUT)/obj/logrepo/logrepo.o $(LR_REPORT_OBJS) $(EH_COMMON)

PROGS += $(OUT)/bin/edgehop-logrepo
$(OUT)/bin/edgehop-logrepo: $(LOGREPO_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -ljansson -lm -o $@

UNIT_TESTS += $(OUT)/tests/unit_logrepo
$(OUT)/obj/tests/unit/test_logrepo.o: CFLAGS += -Ilogrepo
$(OUT)/tests/unit_logrepo: $(OUT)/obj/tests/unit/test_logrepo.o \
		$(LR_REPORT_OBJS) $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -ljansson -lm -o $@
