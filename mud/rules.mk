# mud/: the mobile user device emulator.

MUD_OBJS := $(OUT)/obj/mud/mud.o $(OUT)/obj/mud/mud_route.o $(EH_COMMON)

$(OUT)/obj/mud/%.o: CFLAGS += -Imud

PROGS += $(OUT)/bin/edgehop-mud
$(OUT)/bin/edgehop-mud: $(MUD_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcrypto -lmnl -lm -o $@
