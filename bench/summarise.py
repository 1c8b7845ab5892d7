#!/usr/bin/env python3
"""Collects raw benchmark samples (JSON lines) and writes results.json + BENCHMARKS.md.

Standard library only (Python 3.11). Used by peers.sh:
  summarise.py add RECORDS KEY UNIT LABEL V1 [V2 ...]
  summarise.py add-hyperfine RECORDS HYPERFINE.json KEY=LABEL [KEY=LABEL ...]   (ms; one per command, in order)
  summarise.py add-wrk RECORDS KEY LABEL WRK_OUT [WRK_OUT ...]                  (one file per round)
  summarise.py add-cpu RECORDS KEY LABEL CLK_TCK WRK_OUT TICKS [WRK_OUT TICKS ...]
      (µs of server CPU per request: TICKS of utime+stime during the round ÷ its requests)
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


def add_cpu(records, key, label, clk_tck, pairs):
    clk_tck = float(clk_tck)
    samples, requests, ticks = [], [], []
    for f, t in zip(pairs[0::2], pairs[1::2]):
        run = next(json.loads(line[len("WRKJSON "):]) for line in Path(f).read_text().splitlines()
                   if line.startswith("WRKJSON "))
        requests.append(run["requests"])
        ticks.append(int(t))
        samples.append(int(t) / clk_tck * 1e6 / run["requests"] if run["requests"] else 0.0)
    append(records, {"key": key, "unit": "µs", "label": label, "samples": samples,
                     "extra": {"cpu_ticks": ticks, "clk_tck": int(clk_tck), "requests": requests}})


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
    ("1 cache hit, server CPU time per request (per-core efficiency)", "progimage.hit.cpu_us", "nginx.hit.cpu_us", "nginx master + workers", "", None, "lower"),
    ("2 cold 12 MP → 300 px, whole process (hyperfine -N)", "progimage.thumb.cli", "vips.thumb.cli", "vipsthumbnail", "≤ 0.5×", 0.5, "lower"),
    ("2 cold 12 MP → 300 px vs the decode floor", "progimage.thumb.cli", "djpeg.floor", "djpeg -scale 1/8", "≤ 1.3×", 1.3, "lower"),
    ("2 cold 12 MP → 300 px, one HTTP request (distinct variants)", "progimage.thumb.http", "thumbor.thumb.http", "thumbor /unsafe/300x0", "", None, "lower"),
    ("3 cold throughput 12 MP, 8 conns (distinct 300 px variants)", "progimage.cold8.rps", "floor.rps", "floor: cores ÷ djpeg time", "≥ 0.8×", 0.8, "higher"),
    ("3 cold throughput 12 MP, 64 conns (distinct 300 px variants)", "progimage.cold64.rps", "floor.rps", "floor: cores ÷ djpeg time", "≥ 0.8×", 0.8, "higher"),
    ("3 cold throughput 12 MP, 8 conns, vs thumbor", "progimage.cold8.rps", "thumbor.cold8.rps", "thumbor", "≥ 2.0×", 2.0, "higher"),
    ("3 cold throughput 12 MP, 64 conns, vs thumbor", "progimage.cold64.rps", "thumbor.cold64.rps", "thumbor", "≥ 2.0×", 2.0, "higher"),
    ("3 cold throughput 3 MP, 8 conns (distinct 300 px variants)", "progimage.cold3mp8.rps", "floor3mp.rps", "floor: cores ÷ djpeg time (3 MP)", "≥ 0.8×", 0.8, "higher"),
    ("3 cold throughput 3 MP, 64 conns (distinct 300 px variants)", "progimage.cold3mp64.rps", "floor3mp.rps", "floor: cores ÷ djpeg time (3 MP)", "≥ 0.8×", 0.8, "higher"),
    ("3 cold throughput 3 MP, 8 conns, vs thumbor", "progimage.cold3mp8.rps", "thumbor.cold3mp8.rps", "thumbor", "≥ 2.5×", 2.5, "higher"),
    ("3 cold throughput 3 MP, 64 conns, vs thumbor", "progimage.cold3mp64.rps", "thumbor.cold3mp64.rps", "thumbor", "≥ 2.5×", 2.5, "higher"),
    ("4 ASCII 100 columns of 12 MP, cold over HTTP vs jp2a process", "progimage.ascii.http", "jp2a.ascii.cli", "jp2a --width=100", "≤ 0.5×", 0.5, "lower"),
    ("5 upload 12 MP JPEG (distinct bytes)", "progimage.upload.rps", None, "", "", None, "higher"),
    ("6 peak RSS after 64-conn cold load (VmHWM)", "progimage.rss.peak", "target.rss", "target 512 MiB", "≤ 1.0×", 1.0, "lower"),
    ("6b soak: peak RSS (VmHWM) over the soak", "progimage.soak.rss_peak", "target.rss", "target 512 MiB", "≤ 1.0×", 1.0, "lower"),
    ("6b soak: max RSS in the last third vs the first third (no growth)", "progimage.soak.rss_last_max", "progimage.soak.rss_first_max", "first third", "≤ 1.1×", 1.1, "lower"),
    ("7 scaling: 24 MP vs 1 MP source → 300 px, one HTTP request (cost growth)", "progimage.scale24mp.http", "progimage.scale1mp.http", "the 1 MP source", "", None, "lower"),
    ("7 scaling: 24 MP → 300 px, whole process", "progimage.scale24mp.cli", "vips.scale24mp.cli", "vipsthumbnail", "", None, "lower"),
    ("8a cache hit req/s, S3 node vs local-disk node (wrk, 64 conns)", "s3.hit.rps", "local.hit.rps", "local disk", "", None, "higher"),
    ("8a cache hit latency p50, S3 vs local", "s3.hit.lat_p50", "local.hit.lat_p50", "local disk", "", None, "lower"),
    ("8a cache hit latency p99, S3 vs local", "s3.hit.lat_p99", "local.hit.lat_p99", "local disk", "", None, "lower"),
    ("8a cache hit, one request, S3 vs local", "s3.hit1.http", "local.hit1.http", "local disk", "", None, "lower"),
    ("8b bucket hit (rendered on node A, first asked on node B) vs a local cache hit", "s3.bucket_hit.http", "local.hit1.http", "local cache hit", "", None, "lower"),
    ("8b bucket hit vs rendering it (local cache miss)", "s3.bucket_hit.http", "local.miss.http", "local render", "", None, "lower"),
    ("8c cache miss (cold 12 MP → 300 px render), one request, S3 vs local", "s3.miss.http", "local.miss.http", "local disk", "", None, "lower"),
    ("8d cold distinct variants, 64 conns: 2 S3 nodes behind nginx vs 1 node", "s3.cold2nodes.rps", "s3.cold1node.rps", "1 S3 node", "", None, "higher"),
    ("8d cold distinct variants, 64 conns: 1 S3 node vs 1 local-disk node (section 3)", "s3.cold1node.rps", "progimage.cold64.rps", "local node", "", None, "higher"),
]


def scaling_table(meta, measures):
    """Scenario 7: how the cost of a 300 px thumbnail grows with the source's size."""
    rows = []
    for src in meta.get("scaling") or []:
        mp = src["nominal_mp"]
        http = measures.get(f"progimage.scale{mp}mp.http")
        cli = measures.get(f"progimage.scale{mp}mp.cli")
        vips = measures.get(f"vips.scale{mp}mp.cli")
        if not (http or cli or vips):
            continue
        real_mp = src["width"] * src["height"] / 1e6

        def med(m):
            return m["stats"]["median"] if m else None

        def ms(m):
            return f"{fmt(med(m))} ms" if m else "—"

        def per_mp(m):
            return f"{med(m) / real_mp:.1f}" if m else "—"
        ratio = f"{med(cli) / med(vips):.2f}×" if cli and vips else "—"
        rows.append(f"| {src['width']}×{src['height']} ({real_mp:.1f} MP, {src['bytes'] / 1024:.0f} KB) | "
                    f"{ms(http)} | {per_mp(http)} | {ms(cli)} | {per_mp(cli)} | {ms(vips)} | {per_mp(vips)} | {ratio} |")
    if not rows:
        return []
    return ["", "## Scaling (scenario 7): 300 px thumbnail by source size", "",
            "Sources made from the 12 MP JPEG with `vips resize` (Lanczos, JPEG Q=90), the 12 MP one re-encoded "
            "the same way. HTTP: median of BENCH_N cold requests (distinct `q`); process: `hyperfine -N`. "
            "ms/MP is the median divided by the source's megapixels: a constant ms/MP means the cost grows "
            "linearly with the pixels; a falling one means fixed costs (process or HTTP, encoding the "
            "300 px output) and the scaled decode (shrink-on-load picks a bigger DCT scale for bigger "
            "sources) weigh more than the pixel count.", "",
            "| source | progimage HTTP | ms/MP | progimage process | ms/MP | vipsthumbnail | ms/MP | progimage ÷ vips (process) |",
            "|---|---|---|---|---|---|---|---|", *rows]


def report(records, meta_path, outdir):
    meta = json.loads(Path(meta_path).read_text())
    measures = {}
    for line in Path(records).read_text().splitlines():
        rec = json.loads(line)
        rec["stats"] = stats(rec["samples"])
        measures[rec["key"]] = rec
    # Derived figures.
    def derive(key, unit, label, value):
        measures[key] = {"key": key, "unit": unit, "derived": True, "label": label,
                         "samples": [value], "stats": stats([value])}

    cores = meta.get("cores", 1)
    for src, dst in (("djpeg.floor", "floor.rps"), ("djpeg.floor3mp", "floor3mp.rps")):
        if src in measures:
            floor_ms = measures[src]["stats"]["median"]
            derive(dst, "req/s", f"{cores} cores ÷ `{src}` median {floor_ms:.2f} ms", cores * 1000.0 / floor_ms)
    soak = measures.get("progimage.soak.rss")
    if soak and len(soak["samples"]) >= 3:
        seq = soak["samples"]          # in time order
        k = len(seq) // 3
        derive("progimage.soak.rss_first_max", "MiB", f"max VmRSS of the first third of the soak ({k} samples)", max(seq[:k]))
        derive("progimage.soak.rss_last_max", "MiB", f"max VmRSS of the last third of the soak ({k} samples)", max(seq[-k:]))
    measures["target.rss"] = {"key": "target.rss", "unit": "MiB", "derived": True, "label": "issue 6 target",
                              "samples": [512.0], "stats": stats([512.0])}
    comparisons = []
    for section, pk, rk, rname, target_text, target, direction in COMPARISONS:
        p = measures.get(pk)
        r = measures.get(rk) if rk else None
        if p is None:
            continue
        # A peer median of 0 (a round too short for one request to finish) has no ratio.
        ratio = p["stats"]["median"] / r["stats"]["median"] if r and r["stats"]["median"] else None
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
                 f"BENCH_RUNS={meta.get('runs')} hyperfine runs, BENCH_N={meta.get('n')} HTTP samples, "
                 f"wrk -t{meta.get('threads')} -c{meta.get('conns')}, BENCH_SOAK={meta.get('soak_seconds')} s, "
                 f"thumbor {meta.get('thumbor') or 'not included'}"
                 + (f" ({meta.get('thumbor_processes')} processes)" if meta.get('thumbor') else "")
                 + f", S3 section {'on' if meta.get('s3') else 'off'}"
                 + (f", only: {meta.get('only')}" if meta.get('only') else "") + ". "
                 "Every figure below comes from this one run; medians with (n, min–max); "
                 "ratio = progimage median ÷ peer median.")
    lines.append("")
    lines.append(f"**Machine caveat.** This machine has {meta.get('cores')} cores, shared by the server under test, "
                 "the load generator (wrk, on the same cores over loopback) and whatever else runs on the host "
                 f"(load average at the start: {meta.get('load_start', '?')}). Absolute requests/s and "
                 "milliseconds are therefore low and noisy, and a figure that needs more cores than there are "
                 "(two nodes vs one, 64 connections) measures contention as much as the software. Compare the "
                 "ratios, which come from one run with both sides under the same conditions, and, for the cache "
                 "hit, the server CPU time per request, which is the per-core efficiency and does not depend on "
                 "how many cores wrk takes away.")
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
    first, last = measures.get("progimage.soak.rss_first_max"), measures.get("progimage.soak.rss_last_max")
    if first and last:
        f, l = first["stats"]["median"], last["stats"]["median"]
        peak = measures.get("progimage.soak.rss_peak")
        verdict = "no growth" if l <= f * 1.1 else "**GROWTH**"
        lines.append("")
        lines.append(f"Soak ({meta.get('soak_seconds')} s): RSS max first third {fmt(f)} MiB, last third {fmt(l)} MiB"
                     + (f", peak {fmt(peak['stats']['median'])} MiB" if peak else "")
                     + f" → {verdict} (criterion: last-third max ≤ 1.1 × first-third max).")
    lines.extend(scaling_table(meta, measures))
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
            if nk not in ("errors", "bytes_per_request") and not (nk == "requests" and "errors" in ex):
                notes.append(f"{nk}={nv}")
        if k == "progimage.soak.rss":
            notes.append("samples in time order: " + ", ".join(fmt(v) for v in m["samples"]))
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
    elif cmd == "add-cpu":
        add_cpu(argv[2], argv[3], argv[4], argv[5], argv[6:])
    elif cmd == "report":
        report(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
