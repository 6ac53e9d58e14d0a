# mud/: the mobile user device emulator.

MUD_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard mud/*.c)) $(EH_COMMON)

$(OUT)/obj/mud/%.o: CFLAGS += -Imud

PROGS += $(OUT)/bin/edgehop-mud
$(OUT)/bin/edgehop-mud: $(MUD_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcrypto -lmnl -lm -o $@

# Its phases and report against known answers: the MUD's parts but main.c.
UNIT_TESTS += $(OUT)/tests/unit_mud
$(OUT)/obj/tests/unit/test_mud.o: CFLAGS += -Imud
$(OUT)/tests/unit_mud: $(OUT)/obj/tests/unit/test_mud.o \
		$(filter-out $(OUT)/obj/mud/main.o,$(MUD_OBJS)) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -ljansson -lcrypto -lmnl -lm -o $@
