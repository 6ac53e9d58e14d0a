# logrepo/: the event log repository and its report.

LOGREPO_OBJS := $(OUT)/obj/logrepo/logrepo.o $(OUT)/obj/logrepo/lr_report.o $(EH_COMMON)

PROGS += $(OUT)/bin/edgehop-logrepo
$(OUT)/bin/edgehop-logrepo: $(LOGREPO_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -ljansson -lm -o $@

UNIT_TESTS += $(OUT)/tests/unit_logrepo
$(OUT)/obj/tests/unit/test_logrepo.o: CFLAGS += -Ilogrepo
$(OUT)/tests/unit_logrepo: $(OUT)/obj/tests/unit/test_logrepo.o \
		$(OUT)/obj/logrepo/lr_report.o $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -ljansson -lm -o $@
