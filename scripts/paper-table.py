#!/usr/bin/env python3
"""The main job's table: each run of scripts/run-paper beside the paper's numbers.

Reads OUT/mud-RUN.json (the MUD's report), OUT/esx-RUN.json (ES-x's agent
status: the migration's per-step report), OUT/cty-RUN.json (CT-y's service
status) and OUT/logrepo-report.json (logrepo: migration time, phases). Prints
the table and writes OUT/table.json.
"""
import argparse, json, os, sys

import rt_bounds  # beside this file

PAPER = {  # T. Kim, J-KICS 2022: 10 MB/s, 200 ms RTT, 909 MB base, 20 MB layer, 29 MB checkpoint
    "p": {"name": "P-Migr", "migration_s": 6.91, "mean_rt_s": 0.0289},
    "c": {"name": "C-Migr", "migration_s": 124.90, "mean_rt_s": 0.2029},
}
STEPS = ["T1-checkpoint", "T2-send-checkpoint", "T3-capture-fs", "T4-send-fs",
         "T5-restore", "T7-replay-cutover"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def mud_of(status, mud_id):
    for m in (status or {}).get("muds", []):
        if m.get("mud_id") == mud_id:
            return m
    return None


def phase_stats(mud, prefix):
    n = s = 0.0
    p99 = None
    for ph in mud.get("phases", []):
        if ph["name"].startswith(prefix) and ph["requests"]:
            n += ph["requests"]
            s += ph["mean_ms"] * ph["requests"]
            p99 = max(p99 or 0, ph["p99_ms"])
    return (s / n if n else None), p99, int(n)


def fmt(v, unit="", digits=3):
    if v is None:
        return "-"
    return ("%." + str(digits) + "f%s") % (v, unit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--methods", default="p c")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--count", type=int)
    ap.add_argument("--rate", type=float)
    ap.add_argument("--delay-ms", type=float)
    ap.add_argument("--rate-Bps", type=float)
    a = ap.parse_args()
    lr = load(os.path.join(a.out, "logrepo-report.json")) or {}
    lr_runs = {r["run"]: r for r in lr.get("runs", [])}
    rows, mud_id = [], 100
    for method in a.methods.split():
        for r in range(1, a.runs + 1):
            mud_id += 1
            run = "%s-%d" % (method, r)
            mud = load(os.path.join(a.out, "mud-%s.json" % run)) or {}
            esx = mud_of(load(os.path.join(a.out, "esx-%s.json" % run)), mud_id) or {}
            rep = esx.get("last_migration") or {}
            cty = load(os.path.join(a.out, "cty-%s.json" % run)) or {}
            ctyd = [m.get("digest") for m in cty.get("muds", []) if m.get("mud_id") == mud_id]
            lrr = lr_runs.get(run, {})
            migs = lrr.get("migrations") or []
            steps = {s["step"]: s for s in rep.get("steps", [])}
            before = phase_stats(mud, "before")
            during = phase_stats(mud, "during")
            after = phase_stats(mud, "after")
            allrt = phase_stats(mud, "")
            mrt = (migs[0].get("rt") or {}) if migs else {}
            rows.append({
                "run": run, "method": PAPER[method]["name"], "mud_id": mud_id,
                "migration_s": migs[0]["time_s"] if migs and migs[0].get("time_s") else
                (rep.get("total_ms") / 1e3 if rep.get("total_ms") else None),
                "agent_total_s": rep.get("total_ms", 0) / 1e3 if rep else None,
                "error": rep.get("error"),
                "pause_ms": rep.get("pause_ms"),
                "steps": {k: {"ms": steps[k]["ms"], "raw_bytes": steps[k]["raw_bytes"],
                              "wire_bytes": steps[k]["wire_bytes"]} for k in STEPS if k in steps},
                "replayed": rep.get("replayed"),
                "sent": mud.get("sent"), "answered": mud.get("answered"),
                "lost": mud.get("lost"), "mismatches": mud.get("mismatches"),
                "mean_rt_ms": {"all": allrt[0], "before": before[0], "during": during[0],
                               "after": after[0]},
                "p99_rt_ms": {"all": allrt[1], "before": before[1], "during": during[1],
                              "after": after[1]},
                # requests first sent while the migration ran (logrepo's window:
                # "migr begins" .. "migr finished"), whatever phase the MUD gave them
                "migration_rt_ms": {"requests": mrt.get("requests"), "mean": mrt.get("mean_ms"),
                                    "p99": mrt.get("p99_ms"), "max": mrt.get("max_ms")},
                "ready_ms": rep.get("ready_ms"), "t5_marks": rep.get("t5_marks") or {},
                "ctx_remove_ms": rep.get("ctx_remove_ms"),
                "ct_y_digest_equals_mud": bool(ctyd) and ctyd[0] == mud.get("final_digest"),
            })
    with open(os.path.join(a.out, "table.json"), "w") as f:
        json.dump({"parameters": vars(a), "paper": PAPER, "runs": rows}, f, indent=1)

    print("edgehop on the VM testbed (%s req at %s/s, WAN %s ms each way, %s B/s) beside the paper"
          % (a.count, a.rate, a.delay_ms, a.rate_Bps))
    hdr = "%-7s %-6s %10s %10s %9s %9s %9s %9s %6s %6s %7s" % (
        "method", "run", "migr [s]", "paper [s]", "pause ms", "mean rt", "paper rt",
        "p99 rt", "lost", "mism", "digest")
    print(hdr)
    print("-" * len(hdr))
    for row in rows:
        m = [k for k, v in PAPER.items() if v["name"] == row["method"]][0]
        print("%-7s %-6s %10s %10.2f %9s %9s %9.4f %9s %6s %6s %7s" % (
            row["method"], row["run"], fmt(row["migration_s"], "", 2), PAPER[m]["migration_s"],
            fmt(row["pause_ms"], "", 0),
            fmt(row["mean_rt_ms"]["all"] / 1e3 if row["mean_rt_ms"]["all"] is not None else None, "", 4),
            PAPER[m]["mean_rt_s"],
            fmt(row["p99_rt_ms"]["all"] / 1e3 if row["p99_rt_ms"]["all"] is not None else None, "", 4),
            row["lost"], row["mismatches"], "equal" if row["ct_y_digest_equals_mud"] else "DIFF"))
        if row["error"]:
            print("        migration failed: %s" % row["error"])
    print("\nper step (ms, raw bytes -> bytes on the wire), response time mean/p99 ms before/during/after:")
    for row in rows:
        print("  %s %s:" % (row["method"], row["run"]))
        for k in STEPS:
            s = row["steps"].get(k)
            if s and (s["ms"] or s["raw_bytes"]):
                print("    %-20s %10.1f ms %12d -> %d B" % (k, s["ms"], s["raw_bytes"], s["wire_bytes"]))
        print("    replayed %s requests; rt before %s/%s during %s/%s after %s/%s" % (
            row["replayed"],
            fmt(row["mean_rt_ms"]["before"], "", 1), fmt(row["p99_rt_ms"]["before"], "", 1),
            fmt(row["mean_rt_ms"]["during"], "", 1), fmt(row["p99_rt_ms"]["during"], "", 1),
            fmt(row["mean_rt_ms"]["after"], "", 1), fmt(row["p99_rt_ms"]["after"], "", 1)))
        mr = row["migration_rt_ms"]
        if mr["requests"]:
            # issue 11's target 4 (rt_bounds.py); local: the mean before the handoff
            rtt = 2 * (a.delay_ms or 0)
            local = row["mean_rt_ms"]["before"]
            line = "    sent during the migration: %d, rt mean %s max %s ms" % (
                mr["requests"], fmt(mr["mean"], "", 1), fmt(mr["max"], "", 1))
            if local is not None:
                line += "; bounds: mean %.1f (%g x (RTT %.0f + local %.1f))" % (
                    rt_bounds.mean_bound(rtt, local), rt_bounds.MEAN_FACTOR, rtt, local)
                mx = rt_bounds.max_bound(rtt, local, row["pause_ms"])
                # without the agent's pause window there is no max bound to state
                line += ", max %.1f (RTT + local + pause)" % mx if mx is not None else ", max -"
            print(line)
        if row["t5_marks"] or row["ready_ms"]:
            print("    ES-y ready after %s ms; T5 (ms from its begin): %s; CT-x removed in %s ms" % (
                fmt(row["ready_ms"], "", 0),
                " ".join("%s %.0f" % kv for kv in row["t5_marks"].items()) or "-",
                fmt(row["ctx_remove_ms"], "", 0)))
    bad = [r for r in rows if r["lost"] != 0 or r["mismatches"] != 0 or not r["ct_y_digest_equals_mud"]
           or r["error"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
