#!/usr/bin/env bash
# Figure for `dpe jupyter gc`: the bytes it reclaims on a realistic history, a project whose
# dpe.toml changed five times. The project uses the test suite's configuration (Jupyter and
# pandas from Debian's packages on the offline image dpe-test/bookworm), and each change is an
# `[env]` value: env lines come before the apt layer, so every change builds a new ~760 MB
# image, as a changed package list would. Prints gc's dry run, what `--yes` says it freed, and
# the engine's own image total before and after (`docker system df`; other users of the engine
# change that meanwhile, so it is a cross-check, not the figure).
#
# Usage: bench/gc.sh [CHANGES]   (default 5; uses target/release or target/debug binaries, or
# DPE_BIN_DIR). Removes everything it made at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
changes=${1:-5}
source bench/lib.sh

root=$(mktemp -d /tmp/dpe-bench-gc.XXXXXX)
export DPE_STATE_DIR=$root/state DPE_CONFIG_DIR=$root/config DPE_DATA_DIR=$root/data DPE_CACHE_DIR=$root/cache
export PATH=$bin_dir:$PATH
cleanup() {
  docker image ls -q --filter "label=dpe.workspace=$root/ws" | sort -u | xargs -r docker image rm --force >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/ws/projects/history"
touch "$root/ws/dpe.toml"
write_config() {
  cat > "$root/ws/projects/history/dpe.toml" <<TOML
image = "dpe-test/bookworm:latest"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
[env]
DPE_BENCH_RUN = "$(basename "$root")"
DPE_BENCH_CHANGE = "$1"
TOML
}
images_total() { docker system df --format '{{.Type}} {{.Size}}' | awk '$1 == "Images" { print $2 }'; }
for change in $(seq 0 "$changes"); do
  write_config "$change"
  start=$(date +%s.%N)
  dpe -C "$root/ws" jupyter spec history --json >/dev/null 2>"$root/build.log" || { cat "$root/build.log" >&2; exit 1; }
  printf 'build %d: %.1f s\n' "$change" "$(echo "$(date +%s.%N) - $start" | bc)"
done
before=$(images_total)
echo "--- dpe jupyter gc (dry run)"
dpe -C "$root/ws" jupyter gc
echo "--- dpe jupyter gc --yes"
dpe -C "$root/ws" jupyter gc --yes
echo "engine image total (docker system df): before $before, after $(images_total)"
