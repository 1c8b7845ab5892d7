#!/usr/bin/env python3
"""Collects raw benchmark samples (JSON lines) and writes results.json + BENCHMARKS.md.

Standard library only (Python 3.11). Used by peers.sh:
  summarise.py add RECORDS KEY UNIT LABEL V1 [V2 ...]
  summarise.py add-hyperfine RECORDS HYPERFINE.json KEY=LABEL [KEY=LABEL ...]   (ms; one per command, in order)
  summarise.py add-wrk RECORDS KEY LABEL WRK_OUT [WRK_OUT ...]                  (one file per round)
  summarise.py report RECORDS META.json OUTDIR
"""
import json
import statistics
import sys
from pathlib import Path


def append(records, rec):
    with open(records, "a") as f:
        f.write(json.dumps(rec) + "\n")


def add(records, key, unit, label, values):
    append(records, {"key": key, "unit": unit, "label": label, "samples": [float(v) for v in values]})


def add_hyperfine(records, path, pairs):
    data = json.loads(Path(path).read_text())
    for result, pair in zip(data["results"], pairs):
        key, label = pair.split("=", 1)
        append(records, {"key": key, "unit": "ms", "label": label, "command": result["command"],
                         "samples": [t * 1000.0 for t in result["times"]]})


def add_wrk(records, key, label, files):
    runs = []
    for f in files:
        for line in Path(f).read_text().splitlines():
            if line.startswith("WRKJSON "):
                runs.append(json.loads(line[len("WRKJSON "):]))
    if not runs:
        raise SystemExit(f"no WRKJSON line in {files}")
    errors = [sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")) for r in runs]
    extra = {"requests": [r["requests"] for r in runs], "errors": errors,
             "bytes_per_request": [round(r["bytes"] / r["requests"]) if r["requests"] else 0 for r in runs]}
    append(records, {"key": key + ".rps", "unit": "req/s", "label": label, "samples": [r["rps"] for r in runs], "extra": extra})
    for q in ("p50", "p99"):
        append(records, {"key": f"{key}.lat_{q}", "unit": "ms", "label": f"{label}, latency {q}",
                         "samples": [r[f"lat_{q}_ms"] for r in runs]})


def stats(samples):
    s = sorted(samples)
    out = {"n": len(s), "median": statistics.median(s), "min": s[0], "max": s[-1]}
    out["stdev"] = statistics.stdev(s) if len(s) > 1 else 0.0
    if len(s) >= 4:
        q = statistics.quantiles(s, n=4)
        out["p25"], out["p75"] = q[0], q[2]
    return out


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(m):
    if m is None:
        return "—"
    st = m["stats"]
    spread = f"{fmt(st['min'])}–{fmt(st['max'])}" if st["n"] > 1 else "1 sample"
    return f"{fmt(st['median'])} {m['unit']} (n={st['n']}, {spread})"


# (section, progimage key, peer key, peer name, target text, target ratio, direction)
# direction "lower": smaller progimage/peer ratio is better (times); "higher": larger is better.
COMPARISONS = [
    ("1 cache hit, ~30 KB JPEG, wrk 2 threads / 64 conns", "progimage.hit.rps", "nginx.hit.rps", "nginx", "≥ 1.0×", 1.0, "higher"),
    ("1 cache hit latency p50", "progimage.hit.lat_p50", "nginx.hit.lat_p50", "nginx", "", None, "lower"),
    ("1 cache hit latency p99", "progimage.hit.lat_p99", "nginx.hit.lat_p99", "nginx", "", None, "lower"),
    ("2 cold 12 MP → 300 px, whole process (hyperfine -N)", "progimage.thumb.cli", "vips.thumb.cli", "vipsthumbnail", "≤ 0.5×", 0.5, "lower"),
    ("2 cold 12 MP → 300 px vs the decode floor", "progimage.thumb.cli", "djpeg.floor", "djpeg -scale 1/8", "≤ 1.3×", 1.3, "lower"),
    ("2 cold 12 MP → 300 px, one HTTP request (distinct variants)", "progimage.thumb.http", "thumbor.thumb.http", "thumbor /unsafe/300x0", "", None, "lower"),
    ("3 cold throughput, 8 conns (distinct 300 px variants)", "progimage.cold8.rps", "floor.rps", "floor: cores ÷ djpeg time", "≥ 0.8×", 0.8, "higher"),
    ("3 cold throughput, 64 conns (distinct 300 px variants)", "progimage.cold64.rps", "floor.rps", "floor: cores ÷ djpeg time", "≥ 0.8×", 0.8, "higher"),
    ("4 ASCII 100 columns of 12 MP, cold over HTTP vs jp2a process", "progimage.ascii.http", "jp2a.ascii.cli", "jp2a --width=100", "≤ 0.5×", 0.5, "lower"),
    ("5 upload 12 MP JPEG (distinct bytes)", "progimage.upload.rps", None, "", "", None, "higher"),
    ("6 peak RSS after 64-conn cold load (VmHWM)", "progimage.rss.peak", "target.rss", "target 512 MiB", "≤ 1.0×", 1.0, "lower"),
]


def report(records, meta_path, outdir):
    meta = json.loads(Path(meta_path).read_text())
    measures = {}
    for line in Path(records).read_text().splitlines():
        rec = json.loads(line)
        rec["stats"] = stats(rec["samples"])
        measures[rec["key"]] = rec
    # Derived figures.
    if "djpeg.floor" in measures:
        floor_ms = measures["djpeg.floor"]["stats"]["median"]
        cores = meta.get("cores", 1)
        v = cores * 1000.0 / floor_ms
        measures["floor.rps"] = {"key": "floor.rps", "unit": "req/s", "derived": True,
                                 "label": f"{cores} cores ÷ djpeg median {floor_ms:.2f} ms",
                                 "samples": [v], "stats": stats([v])}
    measures["target.rss"] = {"key": "target.rss", "unit": "MiB", "derived": True, "label": "issue 6 target",
                              "samples": [512.0], "stats": stats([512.0])}
    comparisons = []
    for section, pk, rk, rname, target_text, target, direction in COMPARISONS:
        p = measures.get(pk)
        r = measures.get(rk) if rk else None
        if p is None:
            continue
        ratio = p["stats"]["median"] / r["stats"]["median"] if r else None
        met = None
        if ratio is not None and target is not None:
            met = ratio <= target if direction == "lower" else ratio >= target
        comparisons.append({"what": section, "progimage": pk, "peer": rk, "peer_name": rname,
                            "ratio": ratio, "target": target_text or None, "target_met": met})
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "measures": measures, "comparisons": comparisons}, indent=2) + "\n")

    lines = ["# progimage vs peers — benchmark results", ""]
    lines.append(f"Generated by `bench/peers.sh` on {meta.get('date')} — host `{meta.get('host')}`, "
                 f"{meta.get('cores')} cores, {meta.get('cpu')}, commit `{meta.get('commit')}`.")
    lines.append(f"Settings: BENCH_SECONDS={meta.get('seconds')} per wrk round, BENCH_ROUNDS={meta.get('rounds')}, "
                 f"BENCH_RUNS={meta.get('runs')} hyperfine runs, BENCH_N={meta.get('n')} HTTP samples. "
                 "Every figure below comes from this one run; medians with (n, min–max); "
                 "ratio = progimage median ÷ peer median.")
    lines.append("")
    lines.append("| what | progimage | peer | ratio | target | met |")
    lines.append("|---|---|---|---|---|---|")
    for c in comparisons:
        p = measures[c["progimage"]]
        r = measures.get(c["peer"]) if c["peer"] else None
        peer = f"{c['peer_name']}: {cell(r)}" if r else (f"{c['peer_name']}: not measured" if c["peer_name"] else "—")
        ratio = f"{c['ratio']:.2f}×" if c["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[c["target_met"]]
        lines.append(f"| {c['what']} | {cell(p)} | {peer} | {ratio} | {c['target'] or ''} | {met} |")
    lines.append("")
    lines.append("## Every measure")
    lines.append("")
    lines.append("| key | what | median | stdev | min | max | n | notes |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for k in sorted(measures):
        m = measures[k]
        st = m["stats"]
        notes = []
        if m.get("derived"):
            notes.append("derived")
        if m.get("command"):
            notes.append(f"`{m['command']}`")
        ex = m.get("extra") or {}
        if "errors" in ex:
            notes.append(f"requests/round {ex['requests']}, errors/round {ex['errors']}, bytes/response {ex['bytes_per_request']}")
        for nk, nv in ex.items():
            if nk not in ("requests", "errors", "bytes_per_request"):
                notes.append(f"{nk}={nv}")
        lines.append(f"| `{k}` | {m['label']} | {fmt(st['median'])} {m['unit']} | {fmt(st['stdev'])} | "
                     f"{fmt(st['min'])} | {fmt(st['max'])} | {st['n']} | {'; '.join(notes)} |")
    if meta.get("notes"):
        lines.append("")
        lines.append("## Notes from this run")
        lines.append("")
        for n in meta["notes"]:
            lines.append(f"- {n}")
    lines.append("")
    (out / "BENCHMARKS.md").write_text("\n".join(lines))


def main(argv):
    cmd = argv[1]
    if cmd == "add":
        add(argv[2], argv[3], argv[4], argv[5], argv[6:])
    elif cmd == "add-hyperfine":
        add_hyperfine(argv[2], argv[3], argv[4:])
    elif cmd == "add-wrk":
        add_wrk(argv[2], argv[3], argv[4], argv[5:])
    elif cmd == "report":
        report(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
