#!/usr/bin/env python3
"""The migration benchmark's table (docs/bench.md, "Migration benchmark") from runs.jsonl.

    table.py RUNS.jsonl --out DIR [--delay-ms MS] [--note TEXT]

Per method, memory kind and link rate: min/median/max over the successful runs
of capture, transfer, restore, pause window, bytes on the wire and total; the
ratios of the medians to the floor (runc: capture + restore, and total, same
memory kind and rate) and to the link bound (median bytes / link rate).
Writes DIR/table.json and prints the table.
"""
import argparse
import json
import os
import statistics
import sys

# Target 4's bounds: scripts/rt_bounds.py, found from this file's place in the
# tree (not the working directory's).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..", "scripts"))
import rt_bounds  # noqa: E402

NAMES = {"runc": "CRIU via runc (floor)", "docker": "Docker CLI", "podman": "Podman",
         "c": "edgehop C-Migr", "p": "edgehop P-Migr"}
ORDER = ["runc", "docker", "podman", "c", "p"]
METRICS = ["capture_s", "transfer_s", "restore_s", "pause_s", "wire_bytes", "total_s"]


def mmm(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    return {"min": vals[0], "median": statistics.median(vals), "max": vals[-1], "n": len(vals)}


def fmt(m, key):
    if not m:
        return "-"
    if key == "wire_bytes":
        return "%.1f / %.1f / %.1f" % (m["min"] / 1e6, m["median"] / 1e6, m["max"] / 1e6)
    return "%.2f / %.2f / %.2f" % (m["min"], m["median"], m["max"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--note", default="")
    a = ap.parse_args()

    recs = [json.loads(l) for l in open(a.runs) if l.strip()]
    groups = {}
    for r in recs:
        groups.setdefault((r["mem_kind"], r["rate_Bps"], r["method"]), []).append(r)

    rows = []
    order = lambda m: (ORDER.index(m.partition("+")[0]) if m.partition("+")[0] in ORDER else 99, m)
    for (kind, rate, method) in sorted(groups, key=lambda k: (k[0] != "heap", k[1], order(k[2]))):
        rs = groups[(kind, rate, method)]
        ok = [r for r in rs if r.get("ok")]
        base, _, cc = method.partition("+")
        name = NAMES.get(base, method) + (" (TCP %s)" % cc if cc else "")
        row = {"method": method, "name": name, "mem_kind": kind,
               "rate_Bps": rate, "runs": len(rs), "ok": len(ok),
               "errors": [r.get("error") for r in rs if not r.get("ok")]}
        for k in METRICS:
            row[k] = mmm([r.get(k) for r in ok])
        if row["capture_s"] and row["restore_s"]:
            row["capture_restore_s"] = row["capture_s"]["median"] + row["restore_s"]["median"]
        if row["wire_bytes"]:
            row["link_bound_s"] = row["wire_bytes"]["median"] / rate
        if base in ("c", "p"):
            row["ready_s"] = mmm([r.get("ready_s") for r in ok])
            row["ctx_remove_s"] = mmm([r.get("ctx_remove_s") for r in ok])
            marks = {}
            for r in ok:
                for k, v in (r.get("t5_marks_ms") or {}).items():
                    marks.setdefault(k, []).append(v)
            # median moment of each mark, in time order
            row["t5_marks_ms"] = dict(sorted(((k, statistics.median(v)) for k, v in marks.items()),
                                             key=lambda kv: kv[1]))
            rt = [r for r in ok if r.get("rt_migration") and r["rt_migration"].get("requests")]
            row["rt_migration"] = {
                "runs": len(rt),
                "mean_ms": mmm([r["rt_migration"]["mean_ms"] for r in rt]),
                "max_ms": mmm([r["rt_migration"]["max_ms"] for r in rt]),
                "local_mean_ms": mmm([r.get("rt_local_mean_ms") for r in rt]),
                "local_p50_ms": mmm([r.get("rt_local_p50_ms") for r in rt]),
                "pause_ms": mmm([r["pause_s"] * 1e3 for r in rt if r.get("pause_s") is not None]),
                "lost": sum(r.get("mud_lost") or 0 for r in rt),
                "mismatches": sum(r.get("mud_mismatches") or 0 for r in rt),
            }
        rows.append(row)

    for row in rows:
        floor = next((f for f in rows if f["method"] == "runc" and f["mem_kind"] == row["mem_kind"]
                      and f["rate_Bps"] == row["rate_Bps"] and f.get("capture_restore_s")), None)
        if floor and row.get("capture_restore_s"):
            row["x_floor_capture_restore"] = row["capture_restore_s"] / floor["capture_restore_s"]
            row["x_floor_total"] = row["total_s"]["median"] / floor["total_s"]["median"]
        if row.get("link_bound_s") and row["total_s"]:
            row["x_link_bound"] = row["total_s"]["median"] / row["link_bound_s"]

    json.dump({"note": a.note, "delay_ms_each_way": a.delay_ms, "rows": rows},
              open(a.out + "/table.json", "w"), indent=1)

    w = sys.stdout
    w.write("Migration benchmark (make bench-migr): %s\n" % a.note)
    w.write("min / median / max of the successful runs; seconds, MB (1e6 B) on the wire;\n")
    w.write("x floor = median (capture + restore) / the floor's, and median total / the floor's;\n")
    w.write("x link = median total / (median bytes / link rate). WAN: %g ms each way.\n" % a.delay_ms)
    last = None
    for row in rows:
        key = (row["mem_kind"], row["rate_Bps"])
        if key != last:
            w.write("\n%s memory, link %g MB/s\n" % (row["mem_kind"], row["rate_Bps"] / 1e6))
            w.write("| method | ok | capture | transfer | restore | pause window | MB on the wire | total | x floor (c+r / total) | x link |\n")
            w.write("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
            last = key
        xf = ("%.2f / %.2f" % (row["x_floor_capture_restore"], row["x_floor_total"])
              if "x_floor_capture_restore" in row else "-")
        xl = "%.2f" % row["x_link_bound"] if "x_link_bound" in row else "-"
        w.write("| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s |\n" % (
            row["name"], row["ok"], row["runs"], fmt(row["capture_s"], "capture_s"),
            fmt(row["transfer_s"], "transfer_s"), fmt(row["restore_s"], "restore_s"),
            fmt(row["pause_s"], "pause_s"), fmt(row["wire_bytes"], "wire_bytes"),
            fmt(row["total_s"], "total_s"), xf, xl))
    ed = [r for r in rows if r["method"].partition("+")[0] in ("c", "p") and r["ok"]]
    if ed:
        w.write("\nedgehop: where the time goes (medians, ms): ES-y ready = migr_begin -> ready "
                "(its checks and P-Migr's create of CT-y);\nT5's moments from T5's begin "
                "(the checkpoint is whole; negative: before, the early start)\n")
        for row in ed:
            m = row.get("t5_marks_ms") or {}
            w.write("  %s (%s, %g MB/s): ES-y ready %s; T5: %s; CT-x removed in %s\n" % (
                row["name"], row["mem_kind"], row["rate_Bps"] / 1e6,
                "%.0f" % (row["ready_s"]["median"] * 1e3) if row.get("ready_s") else "-",
                " ".join("%s %.0f" % kv for kv in m.items()) or "-",
                "%.0f" % (row["ctx_remove_s"]["median"] * 1e3) if row.get("ctx_remove_s") else "-"))
        w.write("\nResponse times of the requests sent while the migration ran (logrepo's window;\n"
                "medians over runs, ms); bounds (issue 11, target 4): mean <= %g x (RTT + local),\n"
                "max <= RTT + local p50 + pause window; local = before the handoff, CT-x at its own AP\n"
                % rt_bounds.MEAN_FACTOR)
        w.write("| method | runs | mean | bound | max | bound | lost | mismatches |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
        rtt = 2 * a.delay_ms
        for row in ed:
            q = row.get("rt_migration") or {}
            if not q.get("runs"):
                continue
            med = lambda k: q[k]["median"] if q.get(k) else None
            mb = rt_bounds.mean_bound(rtt, med("local_mean_ms"))
            xb = rt_bounds.max_bound(rtt, med("local_p50_ms"), med("pause_ms"))
            f1 = lambda v: "-" if v is None else "%.1f" % v
            w.write("| %s (%s, %g MB/s) | %d | %s | %s | %s | %s | %d | %d |\n" % (
                row["name"], row["mem_kind"], row["rate_Bps"] / 1e6, q["runs"],
                f1(med("mean_ms")), f1(mb), f1(med("max_ms")), f1(xb), q["lost"], q["mismatches"]))
    for row in rows:
        for e in row["errors"]:
            w.write("\n%s (%s, %g MB/s) failed: %s" % (row["name"], row["mem_kind"], row["rate_Bps"] / 1e6, e))
    w.write("\n")


if __name__ == "__main__":
    main()
