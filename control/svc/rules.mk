# control/svc/: what the service's programs need beyond control/rules.mk
# (which builds them).

# edgehop-svcctl writes its JSON with jansson (the server name comes from the
# network). The library as a prerequisite lands after the objects in the link.
JANSSON_SO := $(shell $(CC) -print-file-name=libjansson.so)
$(OUT)/bin/edgehop-svcctl: $(JANSSON_SO)
