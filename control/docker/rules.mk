# control/docker/: the Docker Engine API client (libcurl over dockerd's unix
# socket, jansson). Linked into edgehop-agent by control/rules.mk; programs that
# link DK_OBJS add -lcurl -ljansson.

DK_OBJS := $(OUT)/obj/control/docker/dk.o
DK_LIBS := -lcurl -ljansson -lpthread

$(DK_OBJS): CFLAGS += -Icontrol/docker
$(DK_OBJS): control/docker/dk.h

# The client against recorded Engine API answers from a server thread in the test.
UNIT_TESTS += $(OUT)/tests/unit_docker
$(OUT)/obj/tests/unit/test_docker.o: CFLAGS += -Icontrol/docker
$(OUT)/obj/tests/unit/test_docker.o: control/docker/dk.h
$(OUT)/tests/unit_docker: $(OUT)/obj/tests/unit/test_docker.o $(DK_OBJS) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(DK_LIBS) -o $@

# The same client against a real dockerd: build/tests/dk_live SOCKET IMAGE
# (tests/30-docker.bats on this host, the testbed's nodes for Docker 26). Not
# unit_*: tests/run-all must not point it at whatever dockerd the host has.
PROGS += $(OUT)/tests/dk_live
$(OUT)/obj/tests/docker/dk_live.o: CFLAGS += -Icontrol/docker -Itests/unit
$(OUT)/obj/tests/docker/dk_live.o: control/docker/dk.h
$(OUT)/tests/dk_live: $(OUT)/obj/tests/docker/dk_live.o $(DK_OBJS) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(DK_LIBS) -o $@
