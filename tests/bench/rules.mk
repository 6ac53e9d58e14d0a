# tests/bench/: the dataplane benchmark's programs (tests/bench/run drives them).
#
# The top Makefile includes only */rules.mk, one level deep, so tests/bench/run
# builds these with `make -f Makefile -f tests/bench/rules.mk bench-progs`.
# The guard lets a parent fragment include this file as well.
ifndef EH_BENCH_RULES
EH_BENCH_RULES := 1

BENCH_HDRS  := tests/bench/bench.h bpf/edgehop_proto.h control/common/eh_wire.h
BENCH_PROGS := $(OUT)/bench/eh-blast $(OUT)/bench/eh-relay $(OUT)/bench/eh-echo
PROGS += $(BENCH_PROGS)

$(OUT)/obj/tests/bench/blast.o $(OUT)/obj/tests/bench/relay.o \
$(OUT)/obj/tests/bench/echo.o: $(BENCH_HDRS)

$(OUT)/bench/eh-%: $(OUT)/obj/tests/bench/%.o $(EH_COMMON)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@

.PHONY: bench-progs
bench-progs: $(BENCH_PROGS)

endif
