//! `dpe completions bash|zsh|fish`: prints the shell's completion script.
//!
//! The scripts hold no candidates: on TAB they call `dpe __complete` (see `crate::complete`),
//! so plugins installed later, the workspace's projects and plugins' own subcommands complete
//! without regenerating anything. The copies committed under `completions/` are this command's
//! output; a test fails when they drift.

use crate::complete::Shell;
use crate::error::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to print the script for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<i32> {
    print!("{}", script(args.shell));
    Ok(0)
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    }
}

// Each script calls the `dpe` the user typed when it is a path (`./target/debug/dpe`), else
// the one on PATH, and discards dpe's stderr so a broken setup never scribbles on the prompt.

const BASH: &str = r#"# bash completion for dpe, printed by `dpe completions bash`.
#
# Install: add `source <(dpe completions bash)` to ~/.bashrc, or save this output as
# ~/.local/share/bash-completion/completions/dpe. Candidates come from `dpe __complete`, so
# plugins installed later complete without regenerating this file.

_dpe() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local dpe=${COMP_WORDS[0]}
    [[ $dpe == */* && -x $dpe ]] || dpe=dpe
    local line
    local -a lines=()
    while IFS= read -r line; do
        [[ -n $line ]] && lines+=("$line")
    done < <(command "$dpe" __complete --shell bash --index "$COMP_CWORD" -- "${COMP_WORDS[@]}" 2>/dev/null)
    COMPREPLY=()
    case ${lines[0]-} in
        :files | :dirs)
            # After `--opt=`, bash completes only the text after `=`.
            [[ $cur == = ]] && cur=
            local flag=-f
            [[ ${lines[0]} == :dirs ]] && flag=-d
            compopt -o filenames 2>/dev/null
            while IFS= read -r line; do
                COMPREPLY+=("$line")
            done < <(compgen "$flag" -- "$cur")
            ;;
        *)
            COMPREPLY=("${lines[@]}")
            ;;
    esac
}

complete -F _dpe dpe
"#;

const ZSH: &str = r#"#compdef dpe
# zsh completion for dpe, printed by `dpe completions zsh`.
#
# Install: save this output as `_dpe` in a directory of your $fpath (before `compinit` runs),
# e.g. `dpe completions zsh > ~/.zfunc/_dpe` with `fpath=(~/.zfunc $fpath)` in ~/.zshrc; or
# add `source <(dpe completions zsh)` to ~/.zshrc after `compinit`. Candidates come from
# `dpe __complete`, so plugins installed later complete without regenerating this file.

_dpe() {
    local dpe=${words[1]}
    [[ $dpe == */* && -x $dpe ]] || dpe=dpe
    local -a lines
    lines=("${(@f)$(command $dpe __complete --shell zsh --index $((CURRENT - 1)) -- "${words[@]}" 2>/dev/null)}")
    lines=(${lines:#})
    case ${lines[1]-} in
        :files) _files ;;
        :dirs) _files -/ ;;
        *) (( ${#lines} )) && _describe -t dpe-candidates 'dpe' lines ;;
    esac
}

if [[ ${funcstack[1]-} == _dpe ]]; then
    _dpe "$@"
else
    compdef _dpe dpe
fi
"#;

const FISH: &str = r#"# fish completion for dpe, printed by `dpe completions fish`.
#
# Install: `dpe completions fish > ~/.config/fish/completions/dpe.fish`. Candidates come from
# `dpe __complete`, so plugins installed later complete without regenerating this file.

function __dpe_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l dpe $tokens[1]
    if not string match -q -- '*/*' $dpe; or not test -x $dpe
        set dpe dpe
    end
    set -l lines (command $dpe __complete --shell fish --index (count $tokens) -- $tokens $current 2>/dev/null)
    switch "$lines[1]"
        case :files
            __fish_complete_path $current
        case :dirs
            __fish_complete_directories $current
        case '*'
            for line in $lines
                printf '%s\n' $line
            end
    end
end

complete -c dpe -f -a '(__dpe_complete)'
"#;
