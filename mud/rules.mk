# mud/: the mobile user device emulator.

MUD_OBJS := $(OUT)/obj/mud/mud.o $(OUT)/obj/mud/mud_route.o \
	    $(OUT)/obj/control/svc/eh_digest.o $(OUT)/obj/logrepo/eh_log.o

$(OUT)/obj/mud/%.o: CFLAGS += -Icontrol/svc -Imud
$(OUT)/obj/mud/mud.o $(OUT)/obj/mud/mud_route.o: $(wildcard mud/*.h control/svc/*.h)

PROGS += $(OUT)/bin/edgehop-mud
$(OUT)/bin/edgehop-mud: $(MUD_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcrypto -lmnl -lm -o $@
