# fish completion for dpe, printed by `dpe completions fish`.
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
