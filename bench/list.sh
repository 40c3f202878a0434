#!/usr/bin/env bash
# Figure for `dpe jupyter list`: how long it takes with many environments. Makes TOTAL
# environments (default 50) of one user in two workspaces: REAL of them (default 3) started for
# real by `dpe jupyter --detach` (Jupyter from Debian's packages on the offline image
# dpe-test/bookworm, the test suite's configuration and cached image), the rest made cheaply
# with `docker run` and the labels and token dpe gives its own (a third of them left running
# `sleep`, so they are "running" servers that do not answer, the others exited; every second
# exited one with the idle auto-stop's status 85). Each fake project has a folder and a
# dpe.toml, so its staleness is worked out like a real one's. Then prints the median of ROUNDS
# runs (default 7) of `list`, `list --json`, `list` with no project context remembered (cold:
# the first listing after every project's configuration changed), `list --stats` and
# `list --size` side by side, and one table. Target: plain `list` <= 150 ms with 50
# environments.
#
# Usage: bench/list.sh [TOTAL] [REAL] [ROUNDS]   (uses target/release or target/debug binaries,
# or DPE_BIN_DIR). Removes everything it made at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-50}
real=${2:-3}
rounds=${3:-7}
source bench/lib.sh
image=dpe-test/bookworm:latest

root=$(mktemp -d /tmp/dpe-bench-list.XXXXXX)
export DPE_STATE_DIR=$root/state DPE_CONFIG_DIR=$root/config DPE_DATA_DIR=$root/data DPE_CACHE_DIR=$root/cache
cleanup() {
  for ws in "$root/ws1" "$root/ws2"; do
    docker ps -aq --filter "label=dpe.workspace=$ws" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=dpe.workspace=$ws" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
  done
  rm -rf "$root"
}
trap cleanup EXIT
dpe() { "$bin_dir/dpe" "$@"; }
ca_line=
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca_line='ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]'
project_toml="image = \"$image\"
apt_packages = [\"python3-notebook\", \"python3-pandas\", \"python3-pip\", \"python3-venv\"]
$ca_line"
mkdir -p "$DPE_STATE_DIR/jupyter/tokens"
chmod -R go-rwx "$DPE_STATE_DIR"
for ws in "$root/ws1" "$root/ws2"; do
  mkdir -p "$ws/projects"
  printf '[jupyter]\nhost_port_start = 27600\n' > "$ws/dpe.toml"
done

# A fake environment: the labels `dpe jupyter` puts on its container, and its token.
fake() { # WORKSPACE NAME COMMAND…
  local ws=$1 name=$2; shift 2
  local hash key
  hash=$(printf %s "$ws" | sha256sum | cut -c1-8)
  key=$name-$hash
  mkdir -p "$ws/projects/$name"
  printf '%s\n' "$project_toml" > "$ws/projects/$name/dpe.toml"
  printf 'bench-token-%s\n' "$name" > "$DPE_STATE_DIR/jupyter/tokens/$key"
  chmod 600 "$DPE_STATE_DIR/jupyter/tokens/$key"
  docker run -d --name "dpe-${name//_/-}-$hash" \
    --label "dpe.workspace=$ws" --label "dpe.project=$name" --label dpe.plugin=jupyter \
    --label "dpe.jupyter.key=$key" --label "dpe.jupyter.port=$((28000 + RANDOM % 1000))" \
    --label "dpe.jupyter.base_url=/$name/" --label dpe.jupyter.url_host=127.0.0.1 \
    --label "dpe.jupyter.user=$(id -u):$(id -g)" --label dpe.jupyter.workdir=/work \
    "$image" "$@" >/dev/null
}

echo "== making $total environments ($real real servers)" >&2
for i in $(seq 1 "$real"); do
  mkdir -p "$root/ws1/projects/real$i"
  printf '%s\n' "$project_toml" > "$root/ws1/projects/real$i/dpe.toml"
  dpe -C "$root/ws1" jupyter "real$i" --detach >/dev/null 2>"$root/start.log" || { cat "$root/start.log" >&2; exit 1; }
done
for i in $(seq 1 $((total - real))); do
  ws=$root/ws$((1 + i % 2))
  if ((i % 3 == 0)); then
    fake "$ws" "fake$i" sleep infinity
  elif ((i % 2 == 0)); then
    fake "$ws" "fake$i" sh -c 'exit 85'
  else
    fake "$ws" "fake$i" true
  fi
done
# The exited ones end at once; let them, so each round lists the same thing.
sleep 2

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); if (NR%2) print a[m]; else print int((a[m]+a[m+1])/2)}'; }
time_of() { # ARGS… → median milliseconds
  local runs=() t0 t1
  for _ in $(seq 1 "$rounds"); do
    t0=$(now)
    dpe -C "$root/ws1" jupyter list "$@" >/dev/null 2>&1
    t1=$(now)
    runs+=("$(( (t1 - t0) / 1000000 ))")
  done
  printf '%s\n' "${runs[@]}" | median
}
# Cold: no project's context remembered yet (the first listing after a configuration change
# of every project), so `dpe context` runs once per project.
cold() {
  local runs=() t0 t1
  for _ in $(seq 1 "$rounds"); do
    rm -rf "$DPE_CACHE_DIR/jupyter/contexts"
    t0=$(now)
    dpe -C "$root/ws1" jupyter list >/dev/null 2>&1
    t1=$(now)
    runs+=("$(( (t1 - t0) / 1000000 ))")
  done
  printf '%s\n' "${runs[@]}" | median
}
listed=$(dpe -C "$root/ws1" jupyter list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "binaries: $bin_dir; environments listed: $listed; median of $rounds runs (ms):"
printf '%-10s %-10s %-10s %-10s %-10s\n' "list" "--json" "cold" "--stats" "--size"
printf '%-10s %-10s %-10s %-10s %-10s\n' "$(time_of)" "$(time_of --json)" "$(cold)" "$(time_of --stats)" "$(time_of --size)"
echo "--- dpe jupyter list (first lines)"
dpe -C "$root/ws1" jupyter list | head -8
