#!/usr/bin/env bash
# What dpe costs on top of the plugin it runs, and how fast completion answers.
#
# Builds the release binary, sets up a throwaway hermetic tree (HOME, dpe's dirs, PATH), and
# prints side by side, in one run:
#   1. `dpe hello` vs running `dpe-hello` directly (a plugin that exits at once), and
#      `git hello` vs `git-hello` as the reference for git-style dispatch;
#      target: dpe adds at most ~1 ms (git adds ~1.9 ms, cargo ~12 ms on these machines);
#   2. completion of `dpe <TAB>` with 50 plugins and a PATH of 500 directories, as bash asks
#      (names) and as zsh/fish ask (names and descriptions from the manifest cache), and the
#      whole TAB inside bash; target: under 10 ms;
#   3. `dpe hello` in a workspace of 1 project vs 1,000 projects; target: no difference.
#
# Uses hyperfine when installed (`apt-get install -y hyperfine`), else a plain loop (means
# only). This is a benchmark to read, not a test: nothing here fails on a slow machine.
#
# Usage: bench/dispatch.sh [RUNS]     (default 300 runs per command)
set -euo pipefail

runs=${1:-300}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

echo "building release binaries (cargo build --release -p dpe)..." >&2
cargo build --release --quiet -p dpe --manifest-path "$root/Cargo.toml"

work=$(mktemp -d "${TMPDIR:-/tmp}/dpe-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{home,config,data,state,cache,bin,path}

# dpe and the plugins live in one directory, so `dpe hello` finds `dpe-hello` beside dpe (the
# place first-party plugins are installed), and `git hello` finds `git-hello` on PATH.
cp "$target/release/dpe" "$work/bin/dpe"
printf '#!/bin/sh\nexit 0\n' > "$work/bin/dpe-hello"
printf '#!/bin/sh\nexit 0\n' > "$work/bin/git-hello"
chmod 755 "$work/bin"/*
chmod -R go-w "$work"

export HOME=$work/home
export DPE_CONFIG_DIR=$work/config DPE_DATA_DIR=$work/data DPE_STATE_DIR=$work/state DPE_CACHE_DIR=$work/cache
export PATH="$work/bin:/usr/local/bin:/usr/bin:/bin"
export GIT_CONFIG_NOSYSTEM=1
unset DPE_WORKSPACE DPE_PROJECT DPE_PLUGIN_DIR DPE_VERBOSE DPE_JSON DPE_COLOR DPE_NO_HOOKS
cd "$work/home"

# Workspaces of 1 and 1,000 projects, each project with its own dpe.toml.
for size in 1 1000; do
    ws=$work/ws$size
    mkdir -p "$ws/projects"
    printf 'image = "python:3.12-slim"\n\n[jupyter]\nport = 8888\n' > "$ws/dpe.toml"
    for i in $(seq -f '%04g' 1 "$size"); do
        mkdir "$ws/projects/p$i"
        printf 'python_packages = ["pandas"]\n' > "$ws/projects/p$i/dpe.toml"
    done
done

# A PATH of 500 directories holding 50 plugins: every tenth directory holds five, half of
# them publishing a manifest with a description, half plain scripts that are never run.
completion_path=""
for d in $(seq -f '%03g' 0 499); do
    mkdir "$work/path/d$d"
    completion_path+="$work/path/d$d:"
done
for n in $(seq -f '%02g' 0 49); do
    dir=$work/path/d$(printf '%03d' $(( (10#$n / 5) * 50 )))
    if (( 10#$n % 2 )); then
        printf '#!/bin/sh\nexit 0\n' > "$dir/dpe-plug$n"
    else
        cat > "$dir/dpe-plug$n" <<EOF
#!/bin/sh
# dpe-plugin-manifest:v1
[ "\$1" = --dpe-manifest ] && echo '{"name":"plug$n","version":"1.0.0","dpe":"^0.1","description":"Plugin number $n"}'
exit 0
EOF
    fi
    chmod 755 "$dir/dpe-plug$n"
done
chmod -R go-w "$work/path"
completion_path+="/usr/bin:/bin"

dpe=$work/bin/dpe
complete_bash="$dpe __complete --shell bash --index 1 -- dpe ''"
complete_fish="$dpe __complete --shell fish --index 1 -- dpe ''"
bash_tab="bash --norc --noprofile -c 'source $root/completions/dpe.bash; COMP_WORDS=(dpe \"\"); COMP_CWORD=1; _dpe'"
bash_source="bash --norc --noprofile -c 'source $root/completions/dpe.bash'"

# Check what is measured before measuring it.
offered=$(PATH=$completion_path "$dpe" __complete --shell fish --index 1 -- dpe '' | grep -c '^plug[0-9]\|^hello' || true)
described=$(PATH=$completion_path "$dpe" __complete --shell fish --index 1 -- dpe '' | grep -c $'^plug.*\tPlugin number' || true)
"$dpe" hello
"$dpe" -C "$work/ws1000" -p p1000 hello

results=()

# bench TITLE COMMAND... : times each command; prints its median and minimum, each with its
# difference to the first command's, and the mean ± σ.
bench() {
    local title=$1
    shift
    local out
    out=$(printf '\n%s\n' "$title")
    if command -v hyperfine > /dev/null && command -v jq > /dev/null; then
        local json=$work/result.json
        hyperfine -N --style none --warmup 30 --runs "$runs" --export-json "$json" "$@" > /dev/null
        # The median resists the spikes of a busy machine better than the mean.
        # The minimum is what the machine can do when nothing else runs.
        out+=$'\n'$(jq -r '.results[0] as $base | .results[] |
            def ms: . * 1000 * 100 | round / 100;
            def delta(a; b): (if a >= b then "+" else "" end) + ((a - b) | ms | tostring);
            "  median \(.median | ms) ms (\(delta(.median; $base.median)))  min \(.min | ms) ms (\(delta(.min; $base.min)))" +
            "  mean \(.mean | ms) ± \(.stddev | ms)  \(.command)"' "$json")
    else
        local command start end
        for command in "$@"; do
            start=$(date +%s%N)
            for ((i = 0; i < runs; i++)); do eval "$command" > /dev/null; done
            end=$(date +%s%N)
            out+=$(awk -v ns=$((end - start)) -v n="$runs" -v c="$command" 'BEGIN { printf "\n  mean %.2f ms (loop of %d)  %s", ns / n / 1e6, n, c }')
        done
    fi
    results+=("$out")
    printf '%s\n' "${out//$work/\$tmp}" >&2
}

bench "1. dispatch: running the plugin directly, then through dpe; git as the reference" \
    "dpe-hello" "dpe hello" "git-hello" "git hello"

PATH=$completion_path bench "2. completion of \`dpe <TAB>\`: 50 plugins on a PATH of 500 directories ($offered offered with \`hello\` beside dpe, $described with a description)" \
    "$complete_bash" "$complete_fish"
PATH=$completion_path bench "   the whole TAB in bash (the difference is what the user waits for)" \
    "$bash_source" "$bash_tab"

bench "3. dispatch in a workspace of 1 project, then of 1,000 projects" \
    "$dpe -C $work/ws1 -p p0001 hello" "$dpe -C $work/ws1000 -p p1000 hello"

printf '\n==== dpe benchmark (%s runs each; %s; %s) ====' "$runs" "$(uname -srm)" "$(nproc) cpus"
printf '%s\n' "${results[@]//$work/\$tmp}"
