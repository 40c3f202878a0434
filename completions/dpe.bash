# bash completion for dpe, printed by `dpe completions bash`.
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
