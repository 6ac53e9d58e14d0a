#!/usr/bin/env python3
# TEST TOOL: sends one (RE)ASSOCIATION REQUEST to a node agent, retrying every
# 0.5 s until an answer or --timeout, and prints "READY ap=NAME" or
# "ASSOC_FAIL <reason>" (exit 0 either way; 1 without an answer). With --junk
# it sends the malformed datagrams of --junk-count instead (no answer expected).
import argparse, os, socket, struct, sys, time

HDR = "!IBBHIIQII"            # struct eh_hdr, 32 bytes, network order
ASSOC = "!II32s"              # struct eh_assoc_body
MAGIC, VERSION = 0x45484F50, 1
T_ASSOC_REQ, T_ASSOC_READY, T_REASSOC_REQ, T_REASSOC_READY, T_ASSOC_FAIL = 3, 4, 5, 6, 9

def hdr(typ, mud, seq, ln, magic=MAGIC, ver=VERSION):
    return struct.pack(HDR, magic, ver, typ, 0, mud, seq, 0, ln, 0)

def junk():
    body = struct.pack(ASSOC, 0, 0, b"junk")
    return [
        b"", b"x", hdr(T_ASSOC_REQ, 1, 0, 0)[:31],                 # short
        hdr(T_ASSOC_REQ, 1, 0, len(body), magic=0xdeadbeef) + body,  # wrong magic
        hdr(T_ASSOC_REQ, 1, 0, len(body), ver=9) + body,            # wrong version
        hdr(T_ASSOC_REQ, 1, 0, len(body) + 100) + body,             # a length that lies
        hdr(T_ASSOC_REQ, 1, 0, 8) + body[:8],                       # body too short
        hdr(1, 1, 0, len(body)) + body,                             # SVCQ to the agent
        hdr(200, 1, 0, len(body)) + body,                           # unknown type
        os.urandom(600),
    ]

p = argparse.ArgumentParser()
p.add_argument("--to", help="agent IP:PORT")
p.add_argument("--mud-id", type=int, default=1)
p.add_argument("--reassoc", action="store_true")
p.add_argument("--prev", default="0.0.0.0", help="REASSOC: previous AP's agent address")
p.add_argument("--timeout", type=float, default=10)
p.add_argument("--junk", action="store_true")
p.add_argument("--junk-count", action="store_true")
p.add_argument("--flood", type=int, default=0, help="send N ASSOCs for ids 10000.. and leave")
a = p.parse_args()
if a.junk_count:
    # Empty datagrams are no datagrams to count for some stacks: the agent counts the rest.
    print(len([d for d in junk() if d]))
    sys.exit(0)
host, port = a.to.rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, int(port)))
if a.junk:
    for d in junk():
        if d:
            s.send(d)
    time.sleep(0.3)
    sys.exit(0)
me = s.getsockname()[0]
if a.flood:
    for i in range(a.flood):
        b = struct.pack(ASSOC, 0, 0, b"flood")
        s.send(hdr(T_ASSOC_REQ, 10000 + i, 0, len(b)) + b)
        if i % 50 == 49:
            time.sleep(0.05)	# let the agent's socket buffer drain
    time.sleep(1)
    sys.exit(0)
body = struct.pack(ASSOC, struct.unpack("!I", socket.inet_aton(me))[0],
                   struct.unpack("!I", socket.inet_aton(a.prev))[0], b"eh-assoc")
typ = T_REASSOC_REQ if a.reassoc else T_ASSOC_REQ
s.settimeout(0.5)
end = time.time() + a.timeout
seq = 0
while time.time() < end:
    s.send(hdr(typ, a.mud_id, seq, len(body)) + body)
    seq += 1
    try:
        d = s.recv(2048)
    except (socket.timeout, ConnectionRefusedError):
        continue
    if len(d) < 32:
        continue
    magic, ver, rtype, flags, mud, rseq, sns, ln, _ = struct.unpack(HDR, d[:32])
    if magic != MAGIC or mud != a.mud_id:
        continue
    if rtype == T_ASSOC_FAIL:
        print("ASSOC_FAIL " + d[32:32 + ln].decode(errors="replace"))
        sys.exit(0)
    if rtype in (T_ASSOC_READY, T_REASSOC_READY):
        print("READY ap=" + d[32 + 8:32 + 40].rstrip(b"\0").decode(errors="replace"))
        sys.exit(0)
print("no answer")
sys.exit(1)
