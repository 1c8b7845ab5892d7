#!/usr/bin/env bash
# progimage vs its peers (nginx, vipsthumbnail, djpeg, jp2a, optionally thumbor), one run,
# loopback only, bounded loads. Writes bench/results/BENCHMARKS.md and results.json.
# See bench/README.md. Quick smoke run: BENCH_SECONDS=1 BENCH_RUNS=3 BENCH_N=5 bench/peers.sh
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
SECONDS_PER_ROUND="${BENCH_SECONDS:-10}"   # wrk -d per round
ROUNDS="${BENCH_ROUNDS:-3}"                # wrk rounds per figure (medians and spreads)
RUNS="${BENCH_RUNS:-20}"                   # hyperfine --runs
WARMUP="${BENCH_WARMUP:-3}"                # hyperfine --warmup
N="${BENCH_N:-30}"                         # HTTP samples for one-request figures
THREADS="${BENCH_THREADS:-2}"              # wrk -t
CONNS="${BENCH_CONNS:-64}"                 # wrk -c for cache hit and peak RSS
UPLOAD_CONNS="${BENCH_UPLOAD_CONNS:-4}"    # wrk -c for uploads
HIT_WIDTH="${BENCH_HIT_WIDTH:-330}"        # width of the ~30 KB cached variant
THUMBOR="${BENCH_THUMBOR:-0}"
OUT_DIR="${BENCH_OUT:-$BENCH_DIR/results}"
SRC12="$ROOT/test-images/photo-12mp-olympus-exif.jpg"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- dependencies
need_pkgs=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx)
for pair in wrk:wrk vipsthumbnail:libvips-tools jp2a:jp2a hyperfine:hyperfine \
            djpeg:libjpeg-turbo-progs curl:curl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if ((${#need_pkgs[@]})); then
  pkgs=$(printf '%s ' "${need_pkgs[@]}")
  log "installing: $pkgs"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  $SUDO apt-get install -y $pkgs || { $SUDO apt-get update && $SUDO apt-get install -y $pkgs; }
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
command -v python3 >/dev/null || die "python3 is needed (for bench/summarise.py)"

# ---------------------------------------------------------------- build
if [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
  log "BENCH_NO_BUILD=1: using the existing target/release binaries"
else
  log "cargo build --release (server and thumbnail example)"
  (cd "$ROOT" && cargo build --release --bin progimage --example thumbnail)
fi
PROGIMAGE="$ROOT/target/release/progimage"
THUMB="$ROOT/target/release/examples/thumbnail"
[[ -f "$SRC12" ]] || die "missing $SRC12"

# ---------------------------------------------------------------- temp dir, cleanup
TMP="$(mktemp -d /tmp/progimage-bench.XXXXXX)"
chmod 755 "$TMP"   # nginx workers may run as nobody
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RECORDS="$TMP/records.jsonl"; : >"$RECORDS"
NOTES="$TMP/notes.txt"; : >"$NOTES"
note() { log "note: $*"; printf '%s\n' "$*" >>"$NOTES"; }
S() { python3 "$BENCH_DIR/summarise.py" "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url, what
  for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
  log "$2 did not answer at $1"; return 1
}
median_of() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- servers
PI_PORT=$(free_port)
PI="http://127.0.0.1:$PI_PORT"
"$PROGIMAGE" --listen "127.0.0.1:$PI_PORT" --data-dir "$TMP/progimage-data" >"$TMP/progimage.log" 2>&1 &
PI_PID=$!; PIDS+=("$PI_PID")
wait_http "$PI/image?limit=1" progimage || { tail -5 "$TMP/progimage.log" >&2; exit 1; }
log "progimage pid $PI_PID on $PI"

# upload_distinct TAG: stores the 12 MP JPEG with TAG appended after EOI, prints its id.
upload_distinct() {
  local f="$TMP/src-$1.jpg"
  { cat "$SRC12"; printf 'bench-%s' "$1"; } >"$f"
  curl -sf -H 'Content-Type: image/jpeg' --data-binary @"$f" "$PI/image?filename=$1.jpg" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

HIT_ID=$(upload_distinct hit)
mkdir -p "$TMP/www"
curl -sf -o "$TMP/www/variant.jpg" "$PI/image/$HIT_ID.jpg?w=$HIT_WIDTH"
HIT_BYTES=$(stat -c %s "$TMP/www/variant.jpg")
chmod -R a+rX "$TMP/www"
HIT_PATH="/image/$HIT_ID.jpg?w=$HIT_WIDTH"
note "cache-hit file: ${HIT_WIDTH} px JPEG variant of the 12 MP source, $HIT_BYTES bytes, the same bytes from both servers"

NG_PORT=$(free_port)
mkdir -p "$TMP/nginx-tmp"
sed -e "s|@PORT@|$NG_PORT|g" -e "s|@ROOT@|$TMP/www|g" -e "s|@TMP@|$TMP|g" \
  "$BENCH_DIR/nginx.conf" >"$TMP/nginx.conf"
"$NGINX" -e "$TMP/nginx-error.log" -p "$TMP" -c "$TMP/nginx.conf" >"$TMP/nginx.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")
NG="http://127.0.0.1:$NG_PORT"
wait_http "$NG/variant.jpg" nginx || { cat "$TMP/nginx.out" >&2; exit 1; }
cmp -s <(curl -sf "$PI$HIT_PATH") <(curl -sf "$NG/variant.jpg") || die "progimage and nginx serve different bytes"
log "nginx pid $NG_PID on $NG"

# ---------------------------------------------------------------- thumbor (optional)
TB=""
if [[ "$THUMBOR" == 1 ]]; then
  VENV="$BENCH_DIR/.venv"
  if [[ ! -x "$VENV/bin/thumbor" ]]; then
    log "installing thumbor into $VENV"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet thumbor; } >"$TMP/thumbor-install.log" 2>&1; then
      note "thumbor: install failed (see pip output), skipped: $(tail -1 "$TMP/thumbor-install.log")"
    fi
  fi
  if [[ -x "$VENV/bin/thumbor" ]]; then
    TB_PORT=$(free_port)
    mkdir -p "$TMP/thumbor-src"; cp "$SRC12" "$TMP/thumbor-src/photo12.jpg"
    cat >"$TMP/thumbor.conf" <<CONF
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = '$TMP/thumbor-src'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
QUALITY = 80
CONF
    "$VENV/bin/thumbor" --ip 127.0.0.1 --port "$TB_PORT" --conf "$TMP/thumbor.conf" -l warning \
      >"$TMP/thumbor.log" 2>&1 &
    TB_PID=$!; PIDS+=("$TB_PID")
    TB="http://127.0.0.1:$TB_PORT"
    if ! (for _ in $(seq 100); do curl -sf -o /dev/null --max-time 5 "$TB/unsafe/300x0/photo12.jpg" && exit 0; sleep 0.2; done; exit 1); then
      note "thumbor: did not answer, skipped ($(tail -1 "$TMP/thumbor.log"))"; TB=""
    fi
  fi
else
  note "thumbor skipped (set BENCH_THUMBOR=1 to install it into bench/.venv and include it)"
fi

# ---------------------------------------------------------------- helpers for wrk
wrk_script() { # name -> path of name.lua + report.lua
  cat "$BENCH_DIR/lua/$1.lua" "$BENCH_DIR/lua/report.lua" >"$TMP/$1.lua"; echo "$TMP/$1.lua"
}
REPORT_LUA="$TMP/report-only.lua"; cp "$BENCH_DIR/lua/report.lua" "$REPORT_LUA"
COLD_LUA=$(wrk_script cold)
UPLOAD_LUA=$(wrk_script upload)
wrk_run() { # out-file, wrk args...
  local out=$1; shift
  wrk --latency "$@" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed: $*"; }
  grep -q '^WRKJSON' "$out" || { cat "$out" >&2; die "wrk printed no result: $*"; }
}

# ---------------------------------------------------------------- 1 cache hit
log "1 cache hit: wrk -t$THREADS -c$CONNS -d${SECONDS_PER_ROUND}s x $ROUNDS rounds, alternating"
curl -sf -o /dev/null "$PI$HIT_PATH"   # warm
pi_files=(); ng_files=()
for r in $(seq "$ROUNDS"); do
  wrk_run "$TMP/hit-pi-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -s "$REPORT_LUA" "$PI$HIT_PATH"
  wrk_run "$TMP/hit-ng-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -s "$REPORT_LUA" "$NG/variant.jpg"
  pi_files+=("$TMP/hit-pi-$r.txt"); ng_files+=("$TMP/hit-ng-$r.txt")
done
S add-wrk "$RECORDS" progimage.hit "progimage cache hit, GET ${HIT_BYTES}-byte variant" "${pi_files[@]}"
S add-wrk "$RECORDS" nginx.hit "nginx static file, same ${HIT_BYTES} bytes" "${ng_files[@]}"

# ---------------------------------------------------------------- 2 cold thumbnail (processes)
log "2 cold thumbnail 12 MP -> 300 px: hyperfine -N, $RUNS runs"
hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/thumb.json" \
  "$THUMB $SRC12 300 $TMP/t-progimage.jpg" \
  "vipsthumbnail $SRC12 -s 300 -o $TMP/t-vips.jpg" \
  "djpeg -scale 1/8 -outfile $TMP/t-djpeg.ppm $SRC12" >"$TMP/thumb.txt" 2>&1 \
  || { cat "$TMP/thumb.txt" >&2; die "hyperfine (thumbnail) failed"; }
S add-hyperfine "$RECORDS" "$TMP/thumb.json" \
  "progimage.thumb.cli=progimage examples/thumbnail, 12 MP -> 300 px JPEG, whole process" \
  "vips.thumb.cli=vipsthumbnail -s 300, whole process" \
  "djpeg.floor=djpeg -scale 1/8 (decode floor), whole process"

# 2b the same over HTTP, one request at a time, distinct variants (q varies), vs thumbor.
TH_ID=$(upload_distinct thumbhttp)
samples=()
for i in $(seq "$N"); do
  samples+=("$(curl -sf -o /dev/null -w '%{time_total}' "$PI/image/$TH_ID.jpg?w=300&q=$((40 + i % 60))" | awk '{print $1*1000}')")
done
S add "$RECORDS" progimage.thumb.http ms "progimage cold 12 MP -> 300 px JPEG, one HTTP request (curl time_total)" "${samples[@]}"
if [[ -n "$TB" ]]; then
  samples=()
  for i in $(seq "$N"); do
    samples+=("$(curl -sf -o /dev/null -w '%{time_total}' "$TB/unsafe/300x0/photo12.jpg" | awk '{print $1*1000}')")
  done
  S add "$RECORDS" thumbor.thumb.http ms "thumbor /unsafe/300x0, no result storage, one HTTP request" "${samples[@]}"
fi

# ---------------------------------------------------------------- 4 ASCII
log "4 ASCII 100 columns: $N cold HTTP requests (distinct charset) vs hyperfine jp2a"
ASCII_ID=$(upload_distinct ascii)
letters=(A B C D E F G H I J K L M N O P Q R S T U V W X Y Z a b c d e f g h i j k l m n o p q r s t u v w x y z)
samples=()
for i in $(seq 0 $((N - 1))); do
  cs="%20.:-%3D%2B*%23${letters[$((i % 52))]}${letters[$(((i / 52) % 52))]}@"
  samples+=("$(curl -sf -o /dev/null -w '%{time_total}' "$PI/image/$ASCII_ID.txt?w=100&charset=$cs" | awk '{print $1*1000}')")
done
S add "$RECORDS" progimage.ascii.http ms "progimage ASCII 100 cols of 12 MP, cold, one HTTP request" "${samples[@]}"
hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/jp2a.json" \
  "jp2a --width=100 --output=$TMP/jp2a.txt $SRC12" >"$TMP/jp2a.out" 2>&1 \
  || { cat "$TMP/jp2a.out" >&2; die "hyperfine (jp2a) failed"; }
S add-hyperfine "$RECORDS" "$TMP/jp2a.json" "jp2a.ascii.cli=jp2a --width=100, whole process"

# ---------------------------------------------------------------- 3 (progimage part) + 6 peak RSS
vm() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PI_PID/status"; }   # kB
for c in 8 "$CONNS"; do
  files=()
  if [[ "$c" == "$CONNS" ]]; then
    # Reset VmHWM so the peak belongs to this load (Linux >= 4.0), else it includes startup.
    if echo 5 >"/proc/$PI_PID/clear_refs" 2>/dev/null; then reset="reset before the load"; else reset="NOT reset (clear_refs refused): peak since start"; fi
    rss_before=$(vm VmRSS)
  fi
  log "3/6 cold distinct 300 px variants: wrk -t$THREADS -c$c -d${SECONDS_PER_ROUND}s x $ROUNDS rounds"
  for r in $(seq "$ROUNDS"); do
    id=$(upload_distinct "cold-$c-$r")
    wrk_run "$TMP/cold-$c-$r.txt" -t"$THREADS" -c"$c" -d"${SECONDS_PER_ROUND}s" --timeout 30s \
      -s "$COLD_LUA" "$PI" -- "$id" "$THREADS"
    files+=("$TMP/cold-$c-$r.txt")
  done
  S add-wrk "$RECORDS" "progimage.cold$c" "progimage cold distinct ~300 px variants of 12 MP, $c conns" "${files[@]}"
  if [[ "$c" == "$CONNS" ]]; then
    hwm=$(vm VmHWM); rss_after=$(vm VmRSS)
    S add "$RECORDS" progimage.rss.peak MiB "progimage VmHWM during the $c-conn cold load ($reset)" "$(awk -v k="$hwm" 'BEGIN{print k/1024}')"
    note "progimage RSS: $((rss_before / 1024)) MiB before the $c-conn cold load, $((rss_after / 1024)) MiB after, peak (VmHWM) $((hwm / 1024)) MiB, $reset"
  fi
done

# ---------------------------------------------------------------- 5 upload
log "5 upload 12 MP JPEG: wrk -t$THREADS -c$UPLOAD_CONNS -d${SECONDS_PER_ROUND}s x $ROUNDS rounds"
files=()
for r in $(seq "$ROUNDS"); do
  wrk_run "$TMP/upload-$r.txt" -t"$THREADS" -c"$UPLOAD_CONNS" -d"${SECONDS_PER_ROUND}s" --timeout 30s \
    -s "$UPLOAD_LUA" "$PI" -- "$SRC12" "r$r-$$"
  files+=("$TMP/upload-$r.txt")
done
S add-wrk "$RECORDS" progimage.upload "progimage POST /image of the 12 MP JPEG, distinct bytes, $UPLOAD_CONNS conns" "${files[@]}"
stored=$(find "$TMP/progimage-data" -type f | wc -l)
note "progimage data dir after the run: $stored files, $(du -sh "$TMP/progimage-data" | cut -f1)"

# ---------------------------------------------------------------- report
note "load average (1/5/15 min) at the start of the loads: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes every figure noisier; ratios from one run are what count)"
grep -q ' 503 \| 500 ' "$TMP/progimage.log" && note "progimage log has 5xx lines (see the errors column)" || true
python3 - "$TMP/meta.json" "$NOTES" <<PY
import json, sys, os, platform, subprocess
cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
try:
    commit = subprocess.run(["git", "-C", "$ROOT", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = "unknown"
meta = {"date": subprocess.run(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"], capture_output=True, text=True).stdout.strip(),
        "host": platform.node(), "cores": os.cpu_count(), "cpu": cpu, "commit": commit,
        "seconds": $SECONDS_PER_ROUND, "rounds": $ROUNDS, "runs": $RUNS, "n": $N,
        "threads": $THREADS, "conns": $CONNS, "upload_conns": $UPLOAD_CONNS,
        "versions": {k: subprocess.run(v, shell=True, capture_output=True, text=True).stdout.strip().splitlines()[0:1]
                     for k, v in {"nginx": "$NGINX -v 2>&1", "wrk": "wrk -v 2>&1 | head -1", "vips": "vips --version",
                                  "hyperfine": "hyperfine --version", "jp2a": "jp2a --version 2>&1 | head -1",
                                  "djpeg": "dpkg-query -W -f='\${Version}' libjpeg-turbo-progs"}.items()},
        "notes": [l for l in open(sys.argv[2]).read().splitlines() if l]}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
mkdir -p "$OUT_DIR"
S report "$RECORDS" "$TMP/meta.json" "$OUT_DIR"
log "wrote $OUT_DIR/BENCHMARKS.md and $OUT_DIR/results.json"
cat "$OUT_DIR/BENCHMARKS.md"
