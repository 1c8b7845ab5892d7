#!/usr/bin/env bash
# progimage vs its peers (nginx, vipsthumbnail, djpeg, jp2a, thumbor), its scaling, a soak
# and the S3 backend's cost: one run, loopback only, bounded loads. Writes BENCHMARKS.md
# and results.json (bench/results by default). See bench/README.md.
# Quick smoke run: BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_RUNS=3 BENCH_N=3 BENCH_SOAK=6 bench/peers.sh
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
SECONDS_PER_ROUND="${BENCH_SECONDS:-10}"   # wrk -d per round
ROUNDS="${BENCH_ROUNDS:-3}"                # wrk rounds per figure (medians and spreads)
RUNS="${BENCH_RUNS:-20}"                   # hyperfine --runs
WARMUP="${BENCH_WARMUP:-3}"                # hyperfine --warmup
N="${BENCH_N:-30}"                         # HTTP samples for one-request figures
THREADS="${BENCH_THREADS:-2}"              # wrk -t
CONNS="${BENCH_CONNS:-64}"                 # wrk -c for cache hit, the high cold load, soak, S3
UPLOAD_CONNS="${BENCH_UPLOAD_CONNS:-4}"    # wrk -c for uploads
HIT_WIDTH="${BENCH_HIT_WIDTH:-330}"        # width of the ~30 KB cached variant
SOAK="${BENCH_SOAK:-60}"                   # seconds of the soak (0: skip)
THUMBOR="${BENCH_THUMBOR:-0}"              # 1: install (bench/.venv) and include thumbor
THUMBOR_PIP="${BENCH_THUMBOR_PIP:-thumbor==7.8.0}"   # pip requirement for thumbor
THUMBOR_PROCS="${BENCH_THUMBOR_PROCS:-$(nproc)}"     # thumbor --processes
S3="${BENCH_S3:-1}"                        # 1: section 8, the S3 backend's cost
ONLY="${BENCH_ONLY:-}"                     # e.g. "hit s3": run only these sections
TARGET_DIR="${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
OUT_DIR="${BENCH_OUT:-$BENCH_DIR/results}"
SRC12="$ROOT/test-images/photo-12mp-olympus-exif.jpg"
SRC3="$ROOT/test-images/photo-3mp-canon-exif6.jpg"
SCALES="1 4 12 24"                         # scenario 7: source sizes in megapixels

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# want SECTION: true unless BENCH_ONLY is set and does not name it.
# Sections: hit thumb ascii cold upload scaling soak s3
want() { [[ -z "$ONLY" || " $ONLY " == *" $1 "* ]]; }

# Settings of the calling shell must not leak into the servers under test (a
# PROGIMAGE_STORE would turn the local-disk node into an S3 one, AWS_* would be picked up).
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(PROGIMAGE_|AWS_)' || true)

# ---------------------------------------------------------------- dependencies
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
apt_install() { # packages...
  log "installing: $*"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y "$@" || { $SUDO apt-get update && $SUDO apt-get install -y "$@"; }
}
need_pkgs=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx)
for pair in wrk:wrk vipsthumbnail:libvips-tools vips:libvips-tools vipsheader:libvips-tools \
            jp2a:jp2a hyperfine:hyperfine djpeg:libjpeg-turbo-progs curl:curl ps:procps nasm:nasm; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if ((${#need_pkgs[@]})); then
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  apt_install "${need_pkgs[@]}"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
command -v python3 >/dev/null || die "python3 is needed (for bench/summarise.py)"
CORES=$(nproc)

# ---------------------------------------------------------------- build
PROGIMAGE="$TARGET_DIR/release/progimage"
THUMB="$TARGET_DIR/release/examples/thumbnail"
S3_BIN="$TARGET_DIR/release/examples/s3_server"
if [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
  log "BENCH_NO_BUILD=1: using the existing binaries in $TARGET_DIR/release"
else
  examples=(--example thumbnail)
  want s3 && [[ "$S3" == 1 ]] && examples+=(--example s3_server)
  log "cargo build --release --bin progimage ${examples[*]} (target dir $TARGET_DIR)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --bin progimage "${examples[@]}")
  # libjpeg-turbo's SIMD needs nasm when mozjpeg-sys is built; a target dir built before
  # nasm was installed keeps the plain-C build until that crate is rebuilt.
  if ! grep -q -a jsimd_idct_islow_avx2 "$PROGIMAGE"; then
    log "the binary has libjpeg-turbo without SIMD (built before nasm was installed): rebuilding mozjpeg-sys"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo clean --release -p mozjpeg-sys \
      && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --bin progimage "${examples[@]}")
  fi
fi
[[ -x "$PROGIMAGE" ]] || die "missing $PROGIMAGE (build it, or point BENCH_TARGET_DIR at a target dir that has it)"
[[ -x "$THUMB" ]] || die "missing $THUMB"
[[ -f "$SRC12" && -f "$SRC3" ]] || die "missing $SRC12 or $SRC3"
if [[ "$S3" == 1 ]] && want s3 && [[ ! -x "$S3_BIN" ]]; then
  die "missing $S3_BIN (cargo build --release --example s3_server), or set BENCH_S3=0"
fi

# ---------------------------------------------------------------- temp dir, cleanup
TMP="$(mktemp -d /tmp/progimage-bench.XXXXXX)"
chmod 755 "$TMP"   # nginx workers may run as nobody
PIDS=()     # processes we started; each is TERMed, then KILLed
PGIDS=()    # process groups we started (thumbor forks its workers)
stop_pid() { # pid: TERM, wait up to 5 s, KILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pgid in "${PGIDS[@]:-}"; do
    [[ -n "$pgid" ]] || continue
    kill -TERM -- "-$pgid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && stop_pid "$pid"
  done
  for pgid in "${PGIDS[@]:-}"; do
    [[ -n "$pgid" ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RECORDS="$TMP/records.jsonl"; : >"$RECORDS"
NOTES="$TMP/notes.txt"; : >"$NOTES"
SCALING="$TMP/scaling.tsv"; : >"$SCALING"
note() { log "note: $*"; printf '%s\n' "$*" >>"$NOTES"; }
S() { python3 "$BENCH_DIR/summarise.py" "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url, what: any HTTP answer counts
  for _ in $(seq 150); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
  log "$2 did not answer at $1"; return 1
}
alive() { # pid, name, log file
  kill -0 "$1" 2>/dev/null && return 0
  tail -20 "$3" >&2 || true
  die "$2 (pid $1) is not running any more (log above)"
}
# ms of one request: curl time_total; fails on a non-2xx answer.
ms_of() { curl -sf --max-time 60 -o /dev/null -w '%{time_total}' "$1" | awk '{print $1*1000}'; }
# One distinct cache-missing variant query per sample index: 60 qualities per width.
distinct_q() { echo "w=$((300 - $1 / 60))&q=$((35 + $1 % 60))"; }
metric_sum() { # base URL, metric name prefix: sum of every series of it in /metrics
  curl -sf --max-time 10 "$1/metrics" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {printf "%d\n", s}'
}
# CPU time (utime + stime, clock ticks) of whole processes: every thread, live or exited.
cpu_ticks() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
# settle WHAT PID...: after a load, wait (60 s at most) until these processes are idle
# (< 10% of a core over 0.5 s). wrk stops with requests in flight that the server still
# works through; without this they would eat into the next round (thumbor's most of all).
settle() {
  local what=$1 a b; shift
  for _ in $(seq 120); do
    a=$(cpu_ticks "$@"); sleep 0.5; b=$(cpu_ticks "$@")
    (( (b - a) * 100 < CLK_TCK * 5 )) && return 0
  done
  note "$what was still busy 60 s after its load: the next figure may be disturbed"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date +%s)

# ---------------------------------------------------------------- servers
# start_progimage NAME [VAR=value...]: a release server on a free port with its own data
# dir; sets the globals P_URL and P_PID.
start_progimage() {
  local name=$1; shift
  local port; port=$(free_port)
  env "$@" "$PROGIMAGE" --listen "127.0.0.1:$port" --data-dir "$TMP/data-$name" \
    >"$TMP/progimage-$name.log" 2>&1 &
  P_PID=$!; PIDS+=("$P_PID")
  P_URL="http://127.0.0.1:$port"
  wait_http "$P_URL/image?limit=1" "progimage $name" || { tail -5 "$TMP/progimage-$name.log" >&2; exit 1; }
  log "progimage $name: pid $P_PID on $P_URL"
}
start_progimage local
PI="$P_URL"; PI_PID="$P_PID"; PI_LOG="$TMP/progimage-local.log"

# upload_distinct TAG [SRC] [BASE URL]: stores SRC (default the 12 MP JPEG) with TAG
# appended after the JPEG's EOI marker (decoders ignore it: new content, same pixels)
# and prints the new image id.
upload_distinct() {
  local tag=$1 src=${2:-$SRC12} base=${3:-$PI}
  local f="$TMP/src-$tag.jpg"
  { cat "$src"; printf 'bench-%s' "$tag"; } >"$f"
  curl -sf --max-time 60 -H 'Content-Type: image/jpeg' --data-binary @"$f" "$base/image?filename=$tag.jpg" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
  rm -f "$f"
}

if want hit; then
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
fi

# ---------------------------------------------------------------- thumbor (optional)
TB=""
THUMBOR_VERSION=""
if [[ "$THUMBOR" == 1 ]] && { want thumb || want cold; }; then
  VENV="$BENCH_DIR/.venv"
  # pip builds from source where no wheel fits (Pillow, or pycurl when asked for through
  # BENCH_THUMBOR_PIP='thumbor[all]==…'): a C compiler and the headers they need.
  tb_pkgs=()
  for p in python3-venv python3-dev gcc libcurl4-openssl-dev libssl-dev libjpeg-dev zlib1g-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || tb_pkgs+=("$p")
  done
  ((${#tb_pkgs[@]})) && { apt_install "${tb_pkgs[@]}" >"$TMP/thumbor-apt.log" 2>&1 || note "thumbor: apt-get install ${tb_pkgs[*]} failed (see the log), trying pip anyway"; }
  want_version="${THUMBOR_PIP#*==}"
  have_version=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("thumbor"))' 2>/dev/null || true)
  if [[ ! -x "$VENV/bin/thumbor" || ( "$THUMBOR_PIP" == *==* && "$have_version" != "$want_version" ) ]]; then
    log "installing $THUMBOR_PIP into $VENV (had: ${have_version:-nothing})"
    if ! { { [[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV"; } \
           && "$VENV/bin/pip" install --quiet --disable-pip-version-check "$THUMBOR_PIP"; } >"$TMP/thumbor-install.log" 2>&1; then
      note "thumbor: pip install $THUMBOR_PIP failed, skipped: $(tail -1 "$TMP/thumbor-install.log")"
    fi
  fi
  if [[ -x "$VENV/bin/thumbor" ]]; then
    THUMBOR_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("thumbor"))' 2>/dev/null || echo unknown)
    TB_PORT=$(free_port)
    mkdir -p "$TMP/thumbor-src"
    cp "$SRC12" "$TMP/thumbor-src/photo12.jpg"; cp "$SRC3" "$TMP/thumbor-src/photo3.jpg"
    # No storage of sources, no result storage: every request loads and decodes. Respect
    # EXIF orientation like progimage does (thumbor's default is not to).
    cat >"$TMP/thumbor.conf" <<CONF
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = '$TMP/thumbor-src'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
RESPECT_ORIENTATION = True
QUALITY = 80
CONF
    # Its own process group: with --processes N the parent forks N workers, and the
    # cleanup stops the whole group.
    setsid "$VENV/bin/thumbor" --ip 127.0.0.1 --port "$TB_PORT" --conf "$TMP/thumbor.conf" \
      --processes "$THUMBOR_PROCS" -l warning >"$TMP/thumbor.log" 2>&1 &
    TB_PID=$!; PIDS+=("$TB_PID"); PGIDS+=("$TB_PID")
    TB="http://127.0.0.1:$TB_PORT"
    if ! (for _ in $(seq 150); do curl -sf -o /dev/null --max-time 5 "$TB/unsafe/300x0/photo12.jpg" && exit 0; sleep 0.2; done; exit 1); then
      note "thumbor: did not answer, skipped ($(tail -1 "$TMP/thumbor.log"))"; TB=""
    else
      tb_workers=$(ps -o pid= --ppid "$TB_PID" | wc -l)
      note "thumbor $THUMBOR_VERSION: --processes $THUMBOR_PROCS ($tb_workers worker processes under pid $TB_PID), file loader, no storage, no result storage, RESPECT_ORIENTATION, QUALITY 80 (URLs set quality per request)"
      log "thumbor pid $TB_PID on $TB"
    fi
  fi
elif [[ "$THUMBOR" != 1 ]]; then
  note "thumbor skipped (set BENCH_THUMBOR=1 to install it into bench/.venv and include it)"
fi

# ---------------------------------------------------------------- helpers for wrk
wrk_script() { # name -> path of name.lua + report.lua
  cat "$BENCH_DIR/lua/$1.lua" "$BENCH_DIR/lua/report.lua" >"$TMP/$1.lua"; echo "$TMP/$1.lua"
}
REPORT_LUA="$TMP/report-only.lua"; cp "$BENCH_DIR/lua/report.lua" "$REPORT_LUA"
COLD_LUA=$(wrk_script cold)
THUMBOR_LUA=$(wrk_script thumbor)
UPLOAD_LUA=$(wrk_script upload)
wrk_try() { # out-file, wrk args... : 0 when wrk ran and printed its result line
  local out=$1; shift
  wrk --latency "$@" >"$out" 2>&1 && grep -q '^WRKJSON' "$out"
}
wrk_run() { # out-file, wrk args... : dies on failure
  wrk_try "$@" || { cat "$1" >&2; die "wrk failed: ${*:2}"; }
}
wrk_requests() { sed -n 's/^WRKJSON .*"requests":\([0-9]*\).*/\1/p' "$1"; }
# cold_ids TAG SRC COUNT [BASE]: COUNT fresh uploads, comma-separated ids (for cold.lua)
cold_ids() {
  local ids="" i
  for i in $(seq "$3"); do ids+="${ids:+,}$(upload_distinct "$1-$i" "$2" "${4:-$PI}")"; done
  echo "$ids"
}
# ids needed so that a load of SECONDS at up to 400 req/s never repeats a variant.
ids_for() { echo $(( ($1 * 400) / 4500 + 1 )); }
ids_per_round=$(ids_for "$SECONDS_PER_ROUND")
check_distinct() { # wrk output, number of ids, what
  local req; req=$(wrk_requests "$1")
  if (( req > $2 * 4500 )); then note "$3: $req requests > $(($2 * 4500)) distinct variants: some were cache hits"; fi
}

# ---------------------------------------------------------------- 1 cache hit
if want hit; then
  log "1 cache hit: wrk -t$THREADS -c$CONNS -d${SECONDS_PER_ROUND}s x $ROUNDS rounds, alternating"
  curl -sf -o /dev/null "$PI$HIT_PATH"   # warm
  pi_files=(); ng_files=(); pi_cpu=(); ng_cpu=()
  for r in $(seq "$ROUNDS"); do
    t0=$(cpu_ticks "$PI_PID")
    wrk_run "$TMP/hit-pi-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -s "$REPORT_LUA" "$PI$HIT_PATH"
    pi_cpu+=("$TMP/hit-pi-$r.txt" $(($(cpu_ticks "$PI_PID") - t0)))
    # nginx: the master and every worker (workers are its children).
    mapfile -t ng_pids < <(echo "$NG_PID"; ps -o pid= --ppid "$NG_PID" | tr -d ' ')
    t0=$(cpu_ticks "${ng_pids[@]}")
    wrk_run "$TMP/hit-ng-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -s "$REPORT_LUA" "$NG/variant.jpg"
    ng_cpu+=("$TMP/hit-ng-$r.txt" $(($(cpu_ticks "${ng_pids[@]}") - t0)))
    pi_files+=("$TMP/hit-pi-$r.txt"); ng_files+=("$TMP/hit-ng-$r.txt")
  done
  S add-wrk "$RECORDS" progimage.hit "progimage cache hit, GET ${HIT_BYTES}-byte variant" "${pi_files[@]}"
  S add-wrk "$RECORDS" nginx.hit "nginx static file, same ${HIT_BYTES} bytes" "${ng_files[@]}"
  S add-cpu "$RECORDS" progimage.hit.cpu_us "progimage CPU time (all threads) per cache-hit request" "$CLK_TCK" "${pi_cpu[@]}"
  S add-cpu "$RECORDS" nginx.hit.cpu_us "nginx CPU time (master + $((${#ng_pids[@]} - 1)) workers) per request" "$CLK_TCK" "${ng_cpu[@]}"
  alive "$PI_PID" progimage "$PI_LOG"
fi

# ---------------------------------------------------------------- 2 cold thumbnail
if want thumb; then
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
  for i in $(seq 0 $((N - 1))); do samples+=("$(ms_of "$PI/image/$TH_ID.jpg?$(distinct_q "$i")")"); done
  S add "$RECORDS" progimage.thumb.http ms "progimage cold 12 MP -> 300 px JPEG, one HTTP request (curl time_total)" "${samples[@]}"
  if [[ -n "$TB" ]]; then
    samples=()
    for i in $(seq 0 $((N - 1))); do
      samples+=("$(ms_of "$TB/unsafe/300x0/filters:quality($((35 + i % 60)))/photo12.jpg")")
    done
    S add "$RECORDS" thumbor.thumb.http ms "thumbor /unsafe/300x0/filters:quality(q), distinct q, no result storage, one HTTP request" "${samples[@]}"
  fi
fi

# ---------------------------------------------------------------- 4 ASCII
if want ascii; then
  log "4 ASCII 100 columns: $N cold HTTP requests (distinct charset) vs hyperfine jp2a"
  ASCII_ID=$(upload_distinct ascii)
  letters=(A B C D E F G H I J K L M N O P Q R S T U V W X Y Z a b c d e f g h i j k l m n o p q r s t u v w x y z)
  samples=()
  for i in $(seq 0 $((N - 1))); do
    cs="%20.:-%3D%2B*%23${letters[$((i % 52))]}${letters[$(((i / 52) % 52))]}@"
    samples+=("$(ms_of "$PI/image/$ASCII_ID.txt?w=100&charset=$cs")")
  done
  S add "$RECORDS" progimage.ascii.http ms "progimage ASCII 100 cols of 12 MP, cold, one HTTP request" "${samples[@]}"
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/jp2a.json" \
    "jp2a --width=100 --output=$TMP/jp2a.txt $SRC12" >"$TMP/jp2a.out" 2>&1 \
    || { cat "$TMP/jp2a.out" >&2; die "hyperfine (jp2a) failed"; }
  S add-hyperfine "$RECORDS" "$TMP/jp2a.json" "jp2a.ascii.cli=jp2a --width=100, whole process"
fi

# ---------------------------------------------------------------- 3 cold throughput + 6 peak RSS
vm() { awk -v k="$1:" '$1 == k {print $2}' "/proc/${2:-$PI_PID}/status"; }   # kB
# floor_scale FILE: the smallest libjpeg DCT scale (1/8, 1/4, 1/2, 1/1) whose output is
# still >= 300 px on its short side, i.e. what shrink-on-load may use for a 300 px thumbnail.
floor_scale() {
  local w h d
  w=$(vipsheader -f width "$1"); h=$(vipsheader -f height "$1")
  for d in 8 4 2 1; do
    if (( (w < h ? w : h) / d >= 300 )); then echo "1/$d"; return; fi
  done
  echo "1/1"
}
if want cold; then
  SCALE3=$(floor_scale "$SRC3")
  log "3 decode floor of the 3 MP source: djpeg -scale $SCALE3 (hyperfine -N, $RUNS runs)"
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/floor3.json" \
    "djpeg -scale $SCALE3 -outfile $TMP/d3.ppm $SRC3" >"$TMP/floor3.txt" 2>&1 \
    || { cat "$TMP/floor3.txt" >&2; die "hyperfine (3 MP floor) failed"; }
  S add-hyperfine "$RECORDS" "$TMP/floor3.json" \
    "djpeg.floor3mp=djpeg -scale $SCALE3 of the 3 MP JPEG (decode floor: smallest scale with >= 300 px), whole process"
  note "3 MP floor: $(vipsheader -f width "$SRC3")x$(vipsheader -f height "$SRC3") stored (EXIF-rotated to portrait); djpeg -scale $SCALE3 is the smallest DCT scale whose output keeps >= 300 px on the short side (1/8 would give less than 300 px); the 12 MP floor uses 1/8 ($(( $(vipsheader -f height "$SRC12") / 8 )) px short side)"

  for src in 12mp 3mp; do
    if [[ "$src" == 12mp ]]; then file="$SRC12"; tbfile=photo12.jpg; sfx=""; what="12 MP"
    else file="$SRC3"; tbfile=photo3.jpg; sfx="3mp"; what="3 MP"; fi
    for c in 8 "$CONNS"; do
      files=(); tfiles=(); rss=0
      if [[ "$src" == 12mp && "$c" == "$CONNS" ]]; then
        rss=1
        # Reset VmHWM so the peak belongs to this load (Linux >= 4.0), else it includes startup.
        if echo 5 >"/proc/$PI_PID/clear_refs" 2>/dev/null; then reset="reset before the load"; else reset="NOT reset (clear_refs refused): peak since start"; fi
        rss_before=$(vm VmRSS)
      fi
      log "3 cold distinct ~300 px variants of $what: wrk -t$THREADS -c$c -d${SECONDS_PER_ROUND}s x $ROUNDS rounds${TB:+, alternating with thumbor}"
      for r in $(seq "$ROUNDS"); do
        ids=$(cold_ids "cold$src-$c-$r" "$file" "$ids_per_round")
        wrk_run "$TMP/cold$src-$c-$r.txt" -t"$THREADS" -c"$c" -d"${SECONDS_PER_ROUND}s" --timeout 30s \
          -s "$COLD_LUA" "$PI" -- "$ids" "$THREADS"
        settle progimage "$PI_PID"
        check_distinct "$TMP/cold$src-$c-$r.txt" "$ids_per_round" "cold $what $c conns round $r"
        files+=("$TMP/cold$src-$c-$r.txt")
        if [[ -n "$TB" ]]; then
          if wrk_try "$TMP/tbcold$src-$c-$r.txt" -t"$THREADS" -c"$c" -d"${SECONDS_PER_ROUND}s" --timeout 30s \
               -s "$THUMBOR_LUA" "$TB" -- "$tbfile" "$THREADS"; then
            tfiles+=("$TMP/tbcold$src-$c-$r.txt")
          else
            note "thumbor cold $what $c conns round $r: wrk failed ($(tail -1 "$TMP/tbcold$src-$c-$r.txt"))"
          fi
          mapfile -t tb_pids < <(echo "$TB_PID"; ps -o pid= --ppid "$TB_PID" | tr -d ' ')
          settle thumbor "${tb_pids[@]}"
        fi
      done
      S add-wrk "$RECORDS" "progimage.cold$sfx$c" "progimage cold distinct ~300 px variants of $what, $c conns" "${files[@]}"
      ((${#tfiles[@]})) && S add-wrk "$RECORDS" "thumbor.cold$sfx$c" "thumbor ($THUMBOR_PROCS processes) cold distinct ~300 px of $what, $c conns" "${tfiles[@]}"
      if ((rss)); then
        hwm=$(vm VmHWM); rss_after=$(vm VmRSS)
        S add "$RECORDS" progimage.rss.peak MiB "progimage VmHWM during the $c-conn cold load of 12 MP ($reset)" "$(awk -v k="$hwm" 'BEGIN{print k/1024}')"
        note "progimage RSS: $((rss_before / 1024)) MiB before the $c-conn cold load, $((rss_after / 1024)) MiB after, peak (VmHWM) $((hwm / 1024)) MiB, $reset"
      fi
      alive "$PI_PID" progimage "$PI_LOG"
    done
  done
fi

# ---------------------------------------------------------------- 5 upload
if want upload; then
  log "5 upload 12 MP JPEG: wrk -t$THREADS -c$UPLOAD_CONNS -d${SECONDS_PER_ROUND}s x $ROUNDS rounds"
  files=()
  for r in $(seq "$ROUNDS"); do
    wrk_run "$TMP/upload-$r.txt" -t"$THREADS" -c"$UPLOAD_CONNS" -d"${SECONDS_PER_ROUND}s" --timeout 30s \
      -s "$UPLOAD_LUA" "$PI" -- "$SRC12" "r$r-$$"
    settle progimage "$PI_PID"
    files+=("$TMP/upload-$r.txt")
  done
  S add-wrk "$RECORDS" progimage.upload "progimage POST /image of the 12 MP JPEG, distinct bytes, $UPLOAD_CONNS conns" "${files[@]}"
fi

# ---------------------------------------------------------------- 7 scaling
if want scaling; then
  log "7 scaling: 300 px thumbnails of ~1/4/12/24 MP sources (vips resize of the 12 MP, Q=90)"
  hf=(); pairs=()
  for mp in $SCALES; do
    f="$TMP/scale-${mp}mp.jpg"
    factor=$(python3 -c "import math; print(math.sqrt($mp / 12))")
    vips resize "$SRC12" "$f[Q=90]" "$factor" || die "vips resize to $mp MP failed"
    printf '%s\t%s\t%s\t%s\n' "$mp" "$(vipsheader -f width "$f")" "$(vipsheader -f height "$f")" "$(stat -c %s "$f")" >>"$SCALING"
    id=$(curl -sf --max-time 60 -H 'Content-Type: image/jpeg' --data-binary @"$f" "$PI/image?filename=scale$mp.jpg" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    samples=()
    for i in $(seq 0 $((N - 1))); do samples+=("$(ms_of "$PI/image/$id.jpg?$(distinct_q "$i")")"); done
    S add "$RECORDS" "progimage.scale${mp}mp.http" ms "progimage cold ~$mp MP -> 300 px JPEG, one HTTP request" "${samples[@]}"
    hf+=("$THUMB $f 300 $TMP/s-progimage.jpg" "vipsthumbnail $f -s 300 -o $TMP/s-vips.jpg")
    pairs+=("progimage.scale${mp}mp.cli=progimage examples/thumbnail, ~$mp MP -> 300 px, whole process"
            "vips.scale${mp}mp.cli=vipsthumbnail -s 300 of ~$mp MP, whole process")
  done
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/scaling.json" "${hf[@]}" \
    >"$TMP/scaling.txt" 2>&1 || { cat "$TMP/scaling.txt" >&2; die "hyperfine (scaling) failed"; }
  S add-hyperfine "$RECORDS" "$TMP/scaling.json" "${pairs[@]}"
  alive "$PI_PID" progimage "$PI_LOG"
fi

# ---------------------------------------------------------------- 6b soak
if want soak && ((SOAK > 0)); then
  ((SOAK >= 6)) || die "BENCH_SOAK must be 0 (skip) or >= 6 (three RSS samples, one per third)"
  nids=$(ids_for "$SOAK")
  log "6b soak: wrk -t$THREADS -c$CONNS -d${SOAK}s cold distinct variants ($nids images), VmRSS every 2 s"
  ids=$(cold_ids soak "$SRC12" "$nids")
  mem_before=$(metric_sum "$PI" 'progimage_cache_bytes{tier="memory"}')
  soak_rss_before=$(vm VmRSS)
  echo 5 >"/proc/$PI_PID/clear_refs" 2>/dev/null && soak_reset="reset before the soak" || soak_reset="NOT reset: peak since start"
  wrk --latency -t"$THREADS" -c"$CONNS" -d"${SOAK}s" --timeout 30s -s "$COLD_LUA" "$PI" -- "$ids" "$THREADS" \
    >"$TMP/soak.txt" 2>&1 &
  WRK_PID=$!; PIDS+=("$WRK_PID")
  # Samples at 1, 3, 5, … s: SOAK/2 of them, all while the load runs.
  rss=(); sleep 1
  for k in $(seq $((SOAK / 2))); do
    ((k > 1)) && sleep 2
    alive "$PI_PID" progimage "$PI_LOG"
    rss+=("$(awk -v k="$(vm VmRSS)" 'BEGIN{printf "%.1f\n", k/1024}')")
  done
  wait "$WRK_PID" || { cat "$TMP/soak.txt" >&2; die "wrk (soak) failed"; }
  grep -q '^WRKJSON' "$TMP/soak.txt" || { cat "$TMP/soak.txt" >&2; die "wrk (soak) printed no result"; }
  check_distinct "$TMP/soak.txt" "$nids" "soak"
  settle progimage "$PI_PID"
  S add-wrk "$RECORDS" progimage.soak "progimage ${SOAK} s soak, cold distinct ~300 px variants of 12 MP, $CONNS conns" "$TMP/soak.txt"
  S add "$RECORDS" progimage.soak.rss MiB "progimage VmRSS every 2 s during the ${SOAK} s soak (in order)" "${rss[@]}"
  S add "$RECORDS" progimage.soak.rss_peak MiB "progimage VmHWM over the ${SOAK} s soak ($soak_reset)" "$(awk -v k="$(vm VmHWM)" 'BEGIN{print k/1024}')"
  mem_after=$(metric_sum "$PI" 'progimage_cache_bytes{tier="memory"}')
  note "soak: VmRSS $((soak_rss_before / 1024)) MiB just before it, samples (MiB, every 2 s): ${rss[*]}"
  note "soak: memory-tier variant cache $((mem_before / 1048576)) MiB before, $((mem_after / 1048576)) MiB after (it grows up to --hot-cache-bytes, 128 MiB by default, by design: a soak shorter than it takes to fill shows that as growth)"
fi

# ---------------------------------------------------------------- 8 S3 backend
if want s3 && [[ "$S3" == 1 ]]; then
  log "8 S3 backend: loopback S3 server (examples/s3_server), nodes A and B on one bucket"
  S3_PORT=$(free_port)
  S3_KEY=progimage-bench; S3_SECRET=progimage-bench-secret; S3_BUCKET=images; S3_PREFIX=bench
  "$S3_BIN" --root "$TMP/s3root" --listen "127.0.0.1:$S3_PORT" --bucket "$S3_BUCKET" \
    --access-key "$S3_KEY" --secret-key "$S3_SECRET" >"$TMP/s3_server.log" 2>&1 &
  S3_PID=$!; PIDS+=("$S3_PID")
  wait_http "http://127.0.0.1:$S3_PORT/" s3_server || { cat "$TMP/s3_server.log" >&2; exit 1; }
  s3env=(AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID="$S3_KEY"
         AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION=us-east-1
         PROGIMAGE_STORE="s3://$S3_BUCKET/$S3_PREFIX")
  start_progimage s3a "${s3env[@]}"; A="$P_URL"; A_PID="$P_PID"
  start_progimage s3b "${s3env[@]}"; B="$P_URL"; B_PID="$P_PID"
  variants_in_bucket() { find "$TMP/s3root/$S3_BUCKET/$S3_PREFIX/variants" -type f 2>/dev/null | grep -vc '/\.' || true; }

  # 8a cache hit, wrk: a variant in A's memory tier vs the same on the local-disk node.
  A_HIT_ID=$(upload_distinct s3hit "$SRC12" "$A")
  L_HIT_ID=$(upload_distinct localhit "$SRC12" "$PI")
  [[ -n "$(ls "$TMP/s3root/$S3_BUCKET/$S3_PREFIX/originals" 2>/dev/null)" ]] || die "S3 node A stored nothing in the bucket"
  curl -sf -o /dev/null "$A/image/$A_HIT_ID.jpg?w=$HIT_WIDTH"; curl -sf -o /dev/null "$PI/image/$L_HIT_ID.jpg?w=$HIT_WIDTH"
  log "8a cache hit S3 node vs local node: wrk -t$THREADS -c$CONNS -d${SECONDS_PER_ROUND}s x $ROUNDS rounds, alternating"
  sf=(); lf=()
  for r in $(seq "$ROUNDS"); do
    wrk_run "$TMP/s3hit-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -s "$REPORT_LUA" "$A/image/$A_HIT_ID.jpg?w=$HIT_WIDTH"
    wrk_run "$TMP/lhit-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -s "$REPORT_LUA" "$PI/image/$L_HIT_ID.jpg?w=$HIT_WIDTH"
    sf+=("$TMP/s3hit-$r.txt"); lf+=("$TMP/lhit-$r.txt")
  done
  S add-wrk "$RECORDS" s3.hit "S3 node, cache hit (own memory tier), ${HIT_WIDTH} px variant" "${sf[@]}"
  S add-wrk "$RECORDS" local.hit "local-disk node, cache hit, same variant size" "${lf[@]}"

  # 8c cache miss, one request: N distinct renders on A (original from the bucket, variant
  # written to it) and on the local node; 8b then asks node B for A's renders.
  log "8b/8c one request at a time: $N cold renders on A and on the local node, then the bucket hits on B"
  A_ID=$(upload_distinct s3miss "$SRC12" "$A")
  L_ID=$(upload_distinct localmiss "$SRC12" "$PI")
  in_bucket_before=$(variants_in_bucket)
  s_miss=(); l_miss=()
  for i in $(seq 0 $((N - 1))); do
    s_miss+=("$(ms_of "$A/image/$A_ID.jpg?$(distinct_q "$i")")")
    l_miss+=("$(ms_of "$PI/image/$L_ID.jpg?$(distinct_q "$i")")")
  done
  S add "$RECORDS" s3.miss.http ms "S3 node A, cold 12 MP -> 300 px render (variant written to the bucket), one request" "${s_miss[@]}"
  S add "$RECORDS" local.miss.http ms "local-disk node, the same cold render, one request" "${l_miss[@]}"
  for _ in $(seq 100); do (( $(variants_in_bucket) >= in_bucket_before + N )) && break; sleep 0.1; done
  (( $(variants_in_bucket) >= in_bucket_before + N )) || note "S3: only $(( $(variants_in_bucket) - in_bucket_before )) of $N variants reached the bucket before the bucket-hit samples"
  b_renders_before=$(metric_sum "$B" progimage_renders_total)
  s_bucket=()
  for i in $(seq 0 $((N - 1))); do s_bucket+=("$(ms_of "$B/image/$A_ID.jpg?$(distinct_q "$i")")"); done
  b_renders=$(( $(metric_sum "$B" progimage_renders_total) - b_renders_before ))
  S add "$RECORDS" s3.bucket_hit.http ms "S3 node B, first request for a variant node A rendered (download from the bucket), one request" "${s_bucket[@]}"
  note "S3 bucket hits: node B rendered $b_renders of the $N variants itself (0 = every one came from the bucket); its first request also fetched the image's metadata"
  s_hit1=(); l_hit1=()
  for i in $(seq 0 $((N - 1))); do
    s_hit1+=("$(ms_of "$A/image/$A_ID.jpg?$(distinct_q "$i")")")
    l_hit1+=("$(ms_of "$PI/image/$L_ID.jpg?$(distinct_q "$i")")")
  done
  S add "$RECORDS" s3.hit1.http ms "S3 node A, cache hit (memory tier), one request" "${s_hit1[@]}"
  S add "$RECORDS" local.hit1.http ms "local-disk node, cache hit (memory tier), one request" "${l_hit1[@]}"

  # 8d requests/s of two nodes (behind nginx) vs one, same cold distinct-variant load.
  LB_PORT=$(free_port)
  mkdir -p "$TMP/nginx-lb-tmp"
  sed -e "s|@PORT@|$LB_PORT|g" -e "s|@UP1@|${A##*:}|g" -e "s|@UP2@|${B##*:}|g" -e "s|@TMP@|$TMP|g" \
    "$BENCH_DIR/nginx-lb.conf" >"$TMP/nginx-lb.conf"
  "$NGINX" -e "$TMP/nginx-lb-error.log" -p "$TMP" -c "$TMP/nginx-lb.conf" >"$TMP/nginx-lb.out" 2>&1 &
  LB_PID=$!; PIDS+=("$LB_PID")
  LB="http://127.0.0.1:$LB_PORT"
  wait_http "$LB/image?limit=1" "nginx load balancer" || { cat "$TMP/nginx-lb.out" >&2; exit 1; }
  log "8d cold distinct variants, wrk -t$THREADS -c$CONNS -d${SECONDS_PER_ROUND}s x $ROUNDS rounds: 2 nodes via nginx vs node A alone"
  f2=(); f1=()
  for r in $(seq "$ROUNDS"); do
    ids=$(cold_ids "s3two-$r" "$SRC12" "$ids_per_round" "$A")
    wrk_run "$TMP/s3two-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" --timeout 30s -s "$COLD_LUA" "$LB" -- "$ids" "$THREADS"
    settle "S3 nodes" "$A_PID" "$B_PID" "$S3_PID"
    ids=$(cold_ids "s3one-$r" "$SRC12" "$ids_per_round" "$A")
    wrk_run "$TMP/s3one-$r.txt" -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" --timeout 30s -s "$COLD_LUA" "$A" -- "$ids" "$THREADS"
    settle "S3 node A" "$A_PID" "$S3_PID"
    f2+=("$TMP/s3two-$r.txt"); f1+=("$TMP/s3one-$r.txt")
  done
  S add-wrk "$RECORDS" s3.cold2nodes "2 S3 nodes behind nginx (least_conn), cold distinct ~300 px variants of 12 MP, $CONNS conns" "${f2[@]}"
  S add-wrk "$RECORDS" s3.cold1node "1 S3 node directly, the same load" "${f1[@]}"
  note "S3 2 nodes vs 1: both nodes, nginx and wrk share this machine's $CORES cores, so a CPU-bound render load cannot scale here; the ratio shows the cost of the second node and the proxy, not what two machines would do"
  for p in "$A_PID:s3a" "$B_PID:s3b"; do alive "${p%%:*}" "progimage ${p#*:}" "$TMP/progimage-${p#*:}.log"; done
  note "S3 bucket after the run: $(find "$TMP/s3root" -type f | wc -l) objects, $(du -sh "$TMP/s3root" | cut -f1)"
fi

# ---------------------------------------------------------------- report
if [[ -d "$TMP/data-local" ]]; then
  note "progimage (local) data dir after the run: $(find "$TMP/data-local" -type f | wc -l) files, $(du -sh "$TMP/data-local" | cut -f1)"
fi
note "load average (1/5/15 min) at the start of the loads: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg); the run took $(( $(date +%s) - STARTED_AT )) s"
for lg in "$TMP"/progimage-*.log; do
  grep -qE ' 50[0-9] |panicked' "$lg" && note "$(basename "$lg") has 5xx or panic lines (see the errors column)"
done
python3 - "$TMP/meta.json" "$NOTES" "$SCALING" <<PY
import json, sys, os, platform, subprocess
def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip().splitlines()[0:1]
cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
commit = (sh("git -C '$ROOT' describe --always --dirty") or ["unknown"])[0]
scaling = []
for line in open(sys.argv[3]).read().splitlines():
    mp, w, h, size = line.split("\t")
    scaling.append({"nominal_mp": int(mp), "width": int(w), "height": int(h), "bytes": int(size)})
meta = {"date": subprocess.run(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"], capture_output=True, text=True).stdout.strip(),
        "host": platform.node(), "cores": os.cpu_count(), "cpu": cpu, "commit": commit,
        "seconds": $SECONDS_PER_ROUND, "rounds": $ROUNDS, "runs": $RUNS, "n": $N,
        "threads": $THREADS, "conns": $CONNS, "upload_conns": $UPLOAD_CONNS, "soak_seconds": $SOAK,
        "thumbor": "$THUMBOR_VERSION" or None, "thumbor_processes": $THUMBOR_PROCS if "$THUMBOR_VERSION" else None,
        "s3": "$S3" == "1", "only": "$ONLY" or None,
        "load_start": "$LOAD_START",
        "scaling": scaling,
        "versions": {k: sh(v) for k, v in {"nginx": "$NGINX -v 2>&1", "wrk": "wrk -v 2>&1 | head -1", "vips": "vips --version",
                                  "hyperfine": "hyperfine --version", "jp2a": "jp2a --version 2>&1 | head -1",
                                  "djpeg": "dpkg-query -W -f='\${Version}' libjpeg-turbo-progs",
                                  "thumbor": "echo $THUMBOR_VERSION"}.items()},
        "notes": [l for l in open(sys.argv[2]).read().splitlines() if l]}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
mkdir -p "$OUT_DIR"
S report "$RECORDS" "$TMP/meta.json" "$OUT_DIR"
log "wrote $OUT_DIR/BENCHMARKS.md and $OUT_DIR/results.json"
cat "$OUT_DIR/BENCHMARKS.md"
