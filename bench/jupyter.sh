#!/usr/bin/env bash
# Benchmark of `dpe jupyter`: time from `dpe jupyter PROJECT --detach` until the URL answers,
# against the equivalent hand-written `docker run` + polling with the same cached image and the
# same arguments (taken from `dpe jupyter spec --json`), plus the start of an unchanged project
# (no build). Target: ratio <= 1.1. Prints the figures side by side.
#
# Usage: bench/jupyter.sh [ROUNDS]   (default 7; uses target/release or target/debug binaries,
# or DPE_BIN_DIR). BENCH_IMAGE picks the base image (default: the offline test image
# dpe-test/bookworm:latest, shared with the test suite's cached build).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
source bench/lib.sh
image=${BENCH_IMAGE:-dpe-test/bookworm:latest}

root=$(mktemp -d /tmp/dpe-bench-jupyter.XXXXXX)
export DPE_STATE_DIR=$root/state DPE_CONFIG_DIR=$root/config DPE_DATA_DIR=$root/data DPE_CACHE_DIR=$root/cache
mkdir -p "$root/ws/projects/bench"
touch "$root/ws/dpe.toml"
ca_line=
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca_line='ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]'
cat > "$root/ws/projects/bench/dpe.toml" <<EOF
image = "$image"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
$ca_line
EOF
dpe() { (cd "$root/ws" && "$bin_dir/dpe" "$@"); }
cleanup() {
  docker rm -f dpe-bench-hand >/dev/null 2>&1 || true
  docker ps -aq --filter "label=dpe.workspace=$root/ws" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=dpe.workspace=$root/ws" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
  docker volume rm -f dpe-bench-hand-env >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); if (NR%2) print a[m]; else printf "%.3f\n", (a[m]+a[m+1])/2}'; }

echo "== first start (builds the image unless it is cached)" >&2
t0=$(now); dpe jupyter bench --detach >/dev/null 2>"$root/first.log"; t1=$(now)
first=$(echo "$t1 - $t0" | bc)
built=no; grep -q "dpe: building" "$root/first.log" && built=yes
dpe jupyter stop bench 2>/dev/null

# The equivalent hand-written command: the same image, mounts, user, env and env file.
spec=$(dpe jupyter spec bench --json 2>/dev/null)
mapfile -t hand < <(python3 - "$spec" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
port = s["port"]["host"] + 1000
args = ["docker", "run", "-d", "--name", "dpe-bench-hand", "-p", f"127.0.0.1:{port}:{s['port']['container']}",
        "-v", f"dpe-bench-hand-env:{s['volume_target']}", "-v", f"{s['mount']['source']}:{s['mount']['target']}",
        "-w", s["workdir"]]
if s["user"]:
    args += ["--user", s["user"]]
for k, v in s["env"].items():
    args += ["-e", f"{k}={v}"]
args += ["--env-file", s["env_file"], s["image"], *s["command"]]
print(s["ready_url"].replace(f":{s['port']['host']}/", f":{port}/"))
print("\n".join(args))
PY
)
ready_url=${hand[0]}
hand_cmd=("${hand[@]:1}")
# Warm the hand-written volume once, as dpe's was warmed by its first start.
"${hand_cmd[@]}" >/dev/null
until curl -fs -o /dev/null "$ready_url"; do sleep 0.05; done
docker rm -f dpe-bench-hand >/dev/null

dpe_times=(); hand_times=(); rebuilt=no
for ((i = 1; i <= rounds; i++)); do
  t0=$(now); dpe jupyter bench --detach >/dev/null 2>"$root/start.log"; t1=$(now)
  grep -q "dpe: building" "$root/start.log" && rebuilt=yes
  dpe_times+=("$(echo "$t1 - $t0" | bc)")
  dpe jupyter stop bench 2>/dev/null

  t0=$(now); "${hand_cmd[@]}" >/dev/null
  until curl -fs -o /dev/null "$ready_url"; do sleep 0.05; done
  t1=$(now)
  hand_times+=("$(echo "$t1 - $t0" | bc)")
  docker stop dpe-bench-hand >/dev/null; docker rm dpe-bench-hand >/dev/null
done

# dpe's own cost with no container work: the same command on the running project.
dpe jupyter bench --detach >/dev/null 2>&1
overhead_times=()
for ((i = 1; i <= rounds; i++)); do
  t0=$(now); dpe jupyter bench --detach >/dev/null 2>&1; t1=$(now)
  overhead_times+=("$(echo "$t1 - $t0" | bc)")
done
dpe jupyter stop bench 2>/dev/null

dpe_median=$(printf '%s\n' "${dpe_times[@]}" | median)
hand_median=$(printf '%s\n' "${hand_times[@]}" | median)
overhead_median=$(printf '%s\n' "${overhead_times[@]}" | median)
ratio=$(echo "scale=3; $dpe_median / $hand_median" | bc)
printf '\n%-44s %s\n' "measure ($rounds rounds, median, seconds)" "value"
printf '%-44s %s\n' "first start (image built: $built)" "$first"
printf '%-44s %s\n' "dpe jupyter --detach until URL answers" "$dpe_median   [${dpe_times[*]}]"
printf '%-44s %s\n' "hand-written docker run + polling" "$hand_median   [${hand_times[*]}]"
printf '%-44s %s\n' "ratio dpe / hand-written (target <= 1.1)" "$ratio"
printf '%-44s %s\n' "dpe's fixed cost (project already running)" "$overhead_median   [${overhead_times[*]}]"
printf '%-44s %s\n' "unchanged project restarted: rebuilt?" "$rebuilt"
