# control/: the offloading service (control/svc/). The node agent adds its own
# programs here later.

SVC_HDRS := $(wildcard control/svc/*.h)
SVC_OBJS := $(OUT)/obj/control/svc/svc.o $(OUT)/obj/control/svc/svc_state.o \
	    $(OUT)/obj/control/svc/ballast.o $(EH_COMMON)

$(OUT)/obj/control/svc/%.o: CFLAGS += -Icontrol/svc
$(OUT)/obj/control/svc/svc.o $(OUT)/obj/control/svc/svc_state.o \
$(OUT)/obj/control/svc/svcctl.o $(OUT)/obj/control/svc/ballast.o: $(SVC_HDRS)

# Static: the service runs as PID 1 of containers built on any base image
# (not under SAN=1: $(STATIC) is empty there).
PROGS += $(OUT)/bin/edgehop-svc $(OUT)/bin/edgehop-svcctl
$(OUT)/bin/edgehop-svc: $(SVC_OBJS) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $(STATIC) $^ -lcrypto -lpthread -o $@

$(OUT)/bin/edgehop-svcctl: $(OUT)/obj/control/svc/svcctl.o $(EH_COMMON) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcrypto -o $@

UNIT_TESTS += $(OUT)/tests/unit_svc
$(OUT)/obj/tests/unit/test_svc.o: CFLAGS += -Icontrol/svc
$(OUT)/obj/tests/unit/test_svc.o: $(SVC_HDRS)

$(OUT)/tests/unit_svc: $(OUT)/obj/tests/unit/test_svc.o $(OUT)/obj/control/svc/ballast.o \
		$(OUT)/obj/control/svc/svc_state.o $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcrypto -o $@

# --- edgehop-agent: thin verbs (control/agent) over the parts below it -----------
# DK_OBJS, PEER_OBJS, NL_OBJS, MIGR_OBJS come from control/<part>/rules.mk.
AGENT_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard control/agent/*.c))
$(AGENT_OBJS): CFLAGS += -Icontrol -Icontrol/agent -Icontrol/docker -Icontrol/peer \
	-Icontrol/nl -Icontrol/migr -Icontrol/runtime
$(AGENT_OBJS): $(wildcard control/*/*.h)
PROGS += $(OUT)/bin/edgehop-agent
$(OUT)/bin/edgehop-agent: $(AGENT_OBJS) $(DK_OBJS) $(PEER_OBJS) $(NL_OBJS) $(MIGR_OBJS) \
		$(OUT)/obj/user/eh_dp.o $(OUT)/obj/user/eh_replay.o $(EH_COMMON) | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) -lcurl -ljansson -lmnl -lssl -lcrypto \
		-lzstd -larchive -lpthread -o $@.tmp
	$(Q)mv -f $@.tmp $@   # a new inode: agents running from it (9p in the nodes) keep theirs

# The agent's pure parts (configuration, MUD datagrams) as a unit test.
UNIT_TESTS += $(OUT)/tests/unit_agent
$(OUT)/obj/tests/unit/test_agent.o: CFLAGS += -Icontrol/agent
$(OUT)/obj/tests/unit/test_agent.o: $(wildcard control/agent/*.h)
$(OUT)/tests/unit_agent: $(OUT)/obj/tests/unit/test_agent.o $(OUT)/obj/control/agent/config.o \
		$(OUT)/obj/control/agent/assoc_wire.o $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@

# The migration engine end to end: migr_source() and migr_dest() in one process over
# the peer channel, each with a fake dockerd (tests/unit/fake_dockerd.h).
UNIT_TESTS += $(OUT)/tests/unit_migr
$(OUT)/obj/tests/unit/test_migr.o: CFLAGS += -Icontrol/migr -Icontrol/docker -Icontrol/peer \
	-Icontrol/runtime
$(OUT)/obj/tests/unit/test_migr.o: $(wildcard control/migr/*.h control/docker/*.h control/peer/*.h \
	control/runtime/*.h)
$(OUT)/tests/unit_migr: $(OUT)/obj/tests/unit/test_migr.o $(MIGR_OBJS) $(DK_OBJS) $(PEER_OBJS) \
		$(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcurl -ljansson -lssl -lcrypto -lzstd -larchive -lpthread -o $@
