# Sourced by the benchmarks: sets `bin_dir` to the folder holding the built `dpe` and
# `dpe-jupyter` (DPE_BIN_DIR, else target/release, else target/debug), as an absolute path,
# or stops with how to build them.
bin_dir=${DPE_BIN_DIR:-}
if [[ -z $bin_dir ]]; then
  for candidate in "${CARGO_TARGET_DIR:-target}/release" "${CARGO_TARGET_DIR:-target}/debug"; do
    if [[ -x $candidate/dpe && -x $candidate/dpe-jupyter ]]; then bin_dir=$candidate; break; fi
  done
fi
[[ -n $bin_dir ]] || { echo "error: build dpe and dpe-jupyter first (cargo build -p dpe -p dpe-jupyter)" >&2; exit 1; }
bin_dir=$(cd "$bin_dir" && pwd)
