# control/common/: code several programs link, each file named for what it is
# (README.md, "Layout"). One archive, $(EH_COMMON): a program linking it gets
# only the objects it uses (eh_digest needs -lcrypto, eh_stats -lm).

EH_COMMON_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard control/common/*.c))

$(EH_COMMON): $(EH_COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

# Every helper of the folder against known answers.
UNIT_TESTS += $(OUT)/tests/unit_common $(OUT)/tests/unit_digest
$(OUT)/tests/unit_common: $(OUT)/obj/tests/unit/test_common.o $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lm -o $@

$(OUT)/tests/unit_digest: $(OUT)/obj/tests/unit/test_digest.o $(EH_COMMON) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lcrypto -o $@
