#!/usr/bin/env python3
# TEST DOUBLE, not the node agent: answers ASSOCIATION/REASSOCIATION REQUESTs
# with READY (or ASSOC_FAIL with --fail) so that the MUD's association and
# handoff can be tested before the real agent exists. Prints one line per
# request: "<TYPE> mud=<id> mud_addr=<ip> prev=<ip> name=<mud name>".
import argparse, socket, struct, sys

HDR = "!IBBHIIQII"            # struct eh_hdr, 32 bytes, network order
ASSOC = "!II32s"              # struct eh_assoc_body
READY = "!IHH32s"             # struct eh_ready_body
MAGIC, VERSION = 0x45484F50, 1
T_ASSOC_REQ, T_ASSOC_READY, T_REASSOC_REQ, T_REASSOC_READY, T_ASSOC_FAIL = 3, 4, 5, 6, 9

p = argparse.ArgumentParser()
p.add_argument("--addr", default="0.0.0.0")
p.add_argument("--port", type=int, default=7778)
p.add_argument("--name", required=True)
p.add_argument("--vip", default="0.0.0.0:7777")
p.add_argument("--fail", action="store_true", help="refuse every request")
a = p.parse_args()
vip, vport = a.vip.rsplit(":", 1)

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((a.addr, a.port))
print("ready", flush=True)
while True:
    data, src = s.recvfrom(2048)
    if len(data) < 32:
        continue
    magic, ver, typ, flags, mud, seq, sns, ln, _ = struct.unpack(HDR, data[:32])
    if magic != MAGIC or ver != VERSION or typ not in (T_ASSOC_REQ, T_REASSOC_REQ):
        continue
    if ln < struct.calcsize(ASSOC) or len(data) < 32 + ln:
        continue
    mud_addr, prev, name = struct.unpack(ASSOC, data[32:32 + struct.calcsize(ASSOC)])
    print("%s mud=%d mud_addr=%s prev=%s name=%s" % (
        "ASSOC_REQ" if typ == T_ASSOC_REQ else "REASSOC_REQ", mud,
        socket.inet_ntoa(struct.pack("!I", mud_addr)),
        socket.inet_ntoa(struct.pack("!I", prev)),
        name.rstrip(b"\0").decode(errors="replace")), flush=True)
    if a.fail:
        body = b"refused by test double"
        rtype = T_ASSOC_FAIL
    else:
        body = struct.pack(READY, struct.unpack("!I", socket.inet_aton(vip))[0],
                           int(vport), 0, a.name.encode()[:31])
        rtype = T_ASSOC_READY if typ == T_ASSOC_REQ else T_REASSOC_READY
    s.sendto(struct.pack(HDR, MAGIC, VERSION, rtype, 0, mud, seq, sns, len(body), 0) + body, src)
