#!/usr/bin/env bash
# The Python environment, old way against new, in one run: a project with a realistic
# data-science set (numpy, pandas, scikit-learn, matplotlib, seaborn, requests, tqdm).
#   old: the packages `pip install`ed in a layer of the project's image, as dpe did before
#        issue 11, reproduced with a plain project Dockerfile: FROM the very image dpe builds for
#        the project (the Debian test base with Jupyter, the CA bundle trusted as dpe does),
#        COPY requirements.txt, RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install
#        --no-cache-dir -r requirements.txt. dpe runs it like any Dockerfile project (no sync).
#   new: the same set synced at start by dpe-sync (uv, pylock.toml) into the project's volume,
#        from the package cache the workspace's trusted projects share (`dpe trust`).
# Rows: first environment; add one package (tabulate); remove one (tqdm); unchanged restart
# (median; the old way runs no sync, as dpe did before; also a project with no packages, and
# dpe-sync alone); a second project with the same set (downloads: the shared cache's growth,
# and uv's "Prepared N packages" from /dpe/venv/.dpe-sync.log; pip's "Downloading" lines); disk
# of PROJECTS such projects (image bytes above the shared image, `docker system df -v` for the
# volumes, the package store with the cache and the environments hardlinked from it). Each
# project's requirements.txt opens with a comment naming it, as no two real ones are the same
# bytes: the old way shares an image only between byte-identical inputs.
# Targets (issue 11): add ≤ 1 s and only that package downloaded; unchanged start within 50 ms
# of today's; second project 0 downloads and ≤ 1 s; ten projects ≤ 1.2× the disk of one.
#
# Usage: bench/env.sh [PROJECTS] [ROUNDS]   (default 10 projects, 5 restarts; needs the network,
# downloads a few hundred MB per old-way build; uses target/release or target/debug binaries,
# or DPE_BIN_DIR). Removes everything it made at the end. A benchmark to read, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
projects=${1:-10}
rounds=${2:-5}
source bench/lib.sh

root=$(mktemp -d /tmp/dpe-bench-env.XXXXXX)
ws=$root/ws
export DPE_STATE_DIR=$root/state DPE_CONFIG_DIR=$root/config DPE_DATA_DIR=$root/data DPE_CACHE_DIR=$root/cache
dpe() { "$bin_dir/dpe" -C "$ws" "$@"; }
store=
cleanup() {
  docker ps -aq --filter "label=dpe.workspace=$ws" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=dpe.workspace=$ws" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
  [[ -z $store ]] || docker volume rm -f "$store" >/dev/null 2>&1 || true
  # Only the images this run built carry its workspace; a shared one built earlier stays. An
  # image with a child is refused until the child is gone: a few passes take the chain.
  for _ in 1 2 3; do
    docker image ls -q --filter "label=dpe.workspace=$ws" | sort -u | xargs -r docker image rm --force >/dev/null 2>&1 || true
  done
  rm -rf "$root"
}
trap cleanup EXIT

set_packages=(numpy pandas scikit-learn matplotlib seaborn requests tqdm)
ca_line=
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca_line='ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]'
# The e2e suite's configuration: its image is usually cached already, and shared by all below.
base_toml="image = \"${BENCH_IMAGE:-dpe-test/bookworm:latest}\"
apt_packages = [\"python3-notebook\", \"python3-pandas\", \"python3-pip\", \"python3-venv\"]
$ca_line"
mkdir -p "$ws/projects"
printf '[jupyter]\nhost_port_start = %s\n' "${BENCH_PORT:-24800}" > "$ws/dpe.toml"

# requirements NAME PACKAGE...: the project's requirements.txt, opening with its name and this
# run's (so no build cache of an earlier run serves the old way).
requirements() {
  local name=$1; shift
  printf '# %s, %s\n' "$name" "$(basename "$root")" > "$ws/projects/$name/requirements.txt"
  printf '%s\n' "$@" >> "$ws/projects/$name/requirements.txt"
}
mkdir -p "$ws/projects/bare"
printf '%s\n' "$base_toml" > "$ws/projects/bare/dpe.toml"
for i in $(seq -f '%02g' 1 "$projects"); do
  mkdir -p "$ws/projects/new$i" "$ws/projects/old$i"
  printf '%s\n' "$base_toml" > "$ws/projects/new$i/dpe.toml"
  printf 'dockerfile = "Dockerfile"\n%s\n' "$ca_line" > "$ws/projects/old$i/dpe.toml"
  requirements "new$i" "${set_packages[@]}"
  requirements "old$i" "${set_packages[@]}"
done
dpe trust >/dev/null

now() { date +%s.%N; }
since() { printf '%.2f' "$(echo "$(now) - $1" | bc)"; }
median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); if (NR%2) print a[m]; else printf "%.3f\n", (a[m]+a[m+1])/2}'; }
spec_field() { dpe jupyter spec "$1" --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2') or '')"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

echo "== the project image (shared by every project below; built unless cached)" >&2
t0=$(now)
bare_image=$(spec_field bare image)
store=$(spec_field new01 store_volume)
echo "   $bare_image in $(since "$t0") s" >&2
bare_bytes=$(docker image inspect --format '{{.Size}}' "$bare_image")
for i in $(seq -f '%02g' 1 "$projects"); do
  cat > "$ws/projects/old$i/Dockerfile" <<EOF
FROM $bare_image
COPY requirements.txt /tmp/dpe/requirements.txt
RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir -r /tmp/dpe/requirements.txt
EOF
done

# start NAME: seconds `dpe jupyter NAME --detach` takes until the server answers.
start() {
  local t0; t0=$(now)
  dpe jupyter "$1" --detach >/dev/null 2>"$root/start.log" || { cat "$root/start.log" >&2; exit 1; }
  since "$t0"
}
stop() { dpe jupyter stop "$1" >/dev/null 2>&1; }
# old_build NAME: builds the old way's image (`spec` builds, starts nothing); prints
# "SECONDS DOWNLOADS MB" from pip's "Downloading x.whl (12.3 MB)" lines.
old_build() {
  local t0 seconds; t0=$(now)
  dpe jupyter spec "$1" --json >/dev/null 2>"$root/build.log" || { cat "$root/build.log" >&2; exit 1; }
  seconds=$(since "$t0")
  # dpe shows the build's progress and names its full log: pip's lines are there.
  local logs; logs=$(sed -n 's/.*(log: `\(.*\)`).*/\1/p' "$root/build.log")
  # shellcheck disable=SC2086
  echo "$seconds $(cat $logs /dev/null | awk '/Downloading .*\(/ { n++; u = $NF; v = $(NF - 1); sub(/\(/, "", v)
    mb += (u ~ /^kB/ ? v / 1000 : u ~ /^GB/ ? v * 1000 : v) } END { printf "%d %.0f", n, mb }')"
}
# new_stats NAME SINCE: what the start since SINCE (a Unix time) did, from the container's log
# (dpe-sync's lines) and the last run in /dpe/venv/.dpe-sync.log (uv's own "Prepared N packages":
# fetched from the index or the cache): "resolve X s, sync Y s, N prepared" and the cache's size
# in bytes after it, as "TEXT|BYTES". What was downloaded is what the cache grew by.
new_stats() {
  local container; container=$(spec_field "$1" container)
  {
    docker logs --since "$2" "$container" 2>&1 | grep '^dpe-sync:' || true
    echo "@@log"
    docker exec "$container" cat /dpe/venv/.dpe-sync.log
    echo "@@cache $(docker exec "$container" du -sb /dpe-cache/cache 2>/dev/null | cut -f1)"
  } | python3 -c '
import re, sys
text = sys.stdin.read()
lines, log = text.split("@@log\n", 1)
log, cache = log.rsplit("@@cache ", 1)
last = log.split("\n== ")[-1]
resolve = re.findall(r"wrote pylock.toml \(\d+ packages\) in ([0-9.]+) s", lines)
synced = re.findall(r"synced in ([0-9.]+) s", lines)
prepared = sum(int(n) for n in re.findall(r"^Prepared (\d+) packages?", last, re.M))
parts = []
if resolve: parts.append("resolve %s s" % resolve[-1])
if synced: parts.append("sync %s s" % synced[-1])
if not parts: parts.append("no sync")
parts.append("%d prepared" % prepared)
print("%s|%s" % (", ".join(parts), cache.strip() or 0))'
}
# new_step NAME CACHE_BEFORE: starts NAME, prints "total s (dpe-sync's part; the cache's
# growth)|CACHE_BYTES".
new_step() {
  local t0 seconds stats after; t0=$(now)
  seconds=$(start "$1")
  stats=$(new_stats "$1" "$t0")
  after=${stats#*|}
  echo "$seconds s start (${stats%|*}; downloaded: cache +$(mb $((after - $2))))|$after"
}
# old_step NAME: builds then starts NAME, prints "build s + start s (N downloads, MB)".
old_step() {
  local build seconds
  read -r -a build < <(old_build "$1")
  seconds=$(start "$1")
  echo "${build[0]} s build + $seconds s start (${build[1]} downloads, ${build[2]} MB)"
}
# store_bytes: the package store's bytes (uv's cache and the trusted projects' environments,
# whose files are hardlinks into the cache: du counts each file once).
store_bytes() {
  docker run --rm --network none --mount "type=volume,source=$store,target=/dpe-cache,readonly" \
    --entrypoint du "$bare_image" -sb /dpe-cache | cut -f1
}
rows=()
row() { rows+=("$1"$'\x1f'"$2"$'\x1f'"$3"); printf '   %s\n     old: %s\n     new: %s\n' "$1" "$2" "$3" >&2; }

echo "== first environment" >&2
old=$(old_step old01)
new=$(new_step new01 0); cache=${new#*|}
row "first environment" "$old" "${new%|*}"

echo "== add one package (tabulate), stopped and started" >&2
stop old01; stop new01
requirements old01 "${set_packages[@]}" tabulate
requirements new01 "${set_packages[@]}" tabulate
old=$(old_step old01)
new=$(new_step new01 "$cache"); cache=${new#*|}
row "add one package (tabulate)" "$old" "${new%|*}"

echo "== remove one package (tqdm)" >&2
stop old01; stop new01
without_tqdm=("${set_packages[@]/tqdm/}")
requirements old01 ${without_tqdm[@]} tabulate
requirements new01 ${without_tqdm[@]} tabulate
old=$(old_step old01)
new=$(new_step new01 "$cache"); cache=${new#*|}; store_one=$(store_bytes)
row "remove one package (tqdm)" "$old" "${new%|*}"

echo "== unchanged restart ($rounds rounds each, interleaved)" >&2
stop old01; stop new01
start bare >/dev/null
declare -A starts=()
for ((r = 1; r <= rounds; r++)); do
  for name in bare old01 new01; do
    stop "$name"
    starts[$name]+="$(start "$name") "
  done
done
restart() { printf '%s\n' ${starts[$1]} | median; }
# dpe-sync alone on the unchanged lock, in the running container, against an exec that runs
# nothing: what the sync step adds to a start (the old way runs no sync, as dpe did before).
container=$(spec_field new01 container)
exec_times() {
  local t0 times=()
  for ((r = 1; r <= rounds * 2; r++)); do
    t0=$(now); docker exec "$container" "$@" >/dev/null; times+=("$(since "$t0")")
  done
  printf '%s\n' "${times[@]}" | median
}
nothing=$(exec_times true)
sync_only=$(exec_times /usr/bin/python3 /usr/local/bin/dpe-sync)
sync_ms=$(echo "($sync_only - $nothing) * 1000" | bc | cut -d. -f1)
row "unchanged restart (median s)" \
  "$(restart old01) s; no packages: $(restart bare) s" \
  "$(restart new01) s; dpe-sync on the unchanged lock: ${sync_ms} ms (docker exec of it minus of true)"
stop bare; stop old01; stop new01

echo "== a second project with the same set (its own requirements.txt, no lock yet)" >&2
old=$(old_step old02)
new=$(new_step new02 "$cache"); cache=${new#*|}
row "second project, same set" "$old" "${new%|*}"
stop old02; stop new02

echo "== projects 3..$projects with the same set" >&2
for i in $(seq -f '%02g' 3 "$projects"); do
  old=$(old_step "old$i"); stop "old$i"
  new=$(new_step "new$i" "$cache"); cache=${new#*|}; stop "new$i"
  printf '   %s\n     old: %s\n     new: %s\n' "project $i" "$old" "${new%|*}" >&2
done

echo "== disk (image bytes above the shared image; volumes from docker system df -v; the store by du)" >&2
{
  echo "bare $bare_bytes"
  for i in $(seq -f '%02g' 1 "$projects"); do
    for kind in old new; do
      image=$(spec_field "$kind$i" image)
      echo "$kind$i $(docker image inspect --format '{{.Size}}' "$image") $(spec_field "$kind$i" volume)"
    done
  done
  docker system df -v --format '{{json .}}'
} > "$root/disk.txt"
store_all=$(store_bytes)
read -r old_one old_ten new_one new_ten < <(python3 - "$root/disk.txt" "$store_one" "$store_all" <<'PY'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
df = json.loads(lines[-1])
def size(text):
    n, u = re.fullmatch(r"([0-9.]+)\s*([kMGT]?B)", text).groups()
    return float(n) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[u]
volumes = {v["Name"]: size(v["Size"]) for v in df["Volumes"]}
bare = int(lines[0].split()[1])
cost = {}
for line in lines[1:-1]:
    name, image, volume = line.split()
    # An old project's packages are its image above the shared one (and its volume); a new
    # one's are in the store, its volume holds its home and the link to its environment.
    cost[name] = (int(image) - bare if name.startswith("old") else 0) + volumes.get(volume, 0)
old = sorted(k for k in cost if k.startswith("old"))
new = sorted(k for k in cost if k.startswith("new"))
store_one, store_all = int(sys.argv[2]), int(sys.argv[3])
print(int(cost[old[0]]), int(sum(cost[k] for k in old)), int(cost[new[0]] + store_one),
      int(sum(cost[k] for k in new) + store_all))
PY
)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
row "disk, one project" "$(mb "$old_one") (pip layer + volume)" "$(mb "$new_one") (volume + store: cache and its environment)"
row "disk, $projects projects" "$(mb "$old_ten") = $(ratio "$old_ten" "$old_one") one" \
  "$(mb "$new_ten") = $(ratio "$new_ten" "$new_one") one (environments hardlinked; store $(mb "$store_all"))"

# The old way's pip keeps what the image's Debian packages already satisfy (python3-pandas
# brings numpy 1.24), so its environment mixes them with wheels of today; the lock is whole.
echo "== the environments import the set" >&2
check='import numpy, pandas, sklearn, matplotlib, seaborn, requests, tabulate; print(numpy.__version__, pandas.__version__, sklearn.__version__)'
for name in old01 new01; do
  start "$name" >/dev/null
  printf '   %s: %s\n' "$name" "$(dpe jupyter exec "$name" -- python -c "$check" 2>&1 | tail -1)" >&2
  stop "$name"
done

printf '\n%-40s | %-62s | %s\n' "Python environment ($projects projects)" "old: pip in an image layer" "new: dpe-sync (uv, pylock.toml, shared cache)"
for line in "${rows[@]}"; do
  IFS=$'\x1f' read -r label old new <<<"$line"
  printf '%-40s | %-62s | %s\n' "$label" "$old" "$new"
done
echo "targets: add ≤ 1 s and 1 download; unchanged start ≤ today's + 50 ms; second project 0 downloads, ≤ 1 s; $projects projects ≤ 1.2× one"
