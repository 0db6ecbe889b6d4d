package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// completeCommand is the hidden command the completion scripts call with
// the words typed so far: it prints the words that may come next, one a
// line. It reads them from the commands' own --help, so completion never
// disagrees with the help.
const completeCommand = "__complete"

var completionScripts = map[string]string{
	"bash": `# accounthealth completion for bash: source <(accounthealth completion bash)
_accounthealth() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" ` + completeCommand + ` "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _accounthealth accounthealth
`,
	"zsh": `#compdef accounthealth
# accounthealth completion for zsh: source <(accounthealth completion zsh), after compinit
_accounthealth() {
    local -a next
    next=("${(@f)$("${words[1]}" ` + completeCommand + ` "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ -n ${next[1]} ]]; then
        compadd -- "${next[@]}"
    else
        _files
    fi
}
compdef _accounthealth accounthealth
`,
	"fish": `# accounthealth completion for fish: accounthealth completion fish | source
function __accounthealth_complete
    set -l words (commandline -opc) (commandline -ct)
    $words[1] ` + completeCommand + ` $words[2..-1] 2>/dev/null
end
complete -c accounthealth -a '(__accounthealth_complete)'
`,
}

func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("completion", "completion bash|zsh|fish", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: accounthealth completion bash|zsh|fish

Prints the script that completes accounthealth's commands, subcommands and flags in that shell:
  bash: source <(accounthealth completion bash)       (in ~/.bashrc)
  zsh:  source <(accounthealth completion zsh)        (in ~/.zshrc, after compinit)
  fish: accounthealth completion fish | source        (in ~/.config/fish/config.fish)
The command takes no flags.
`)
	}
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	script, ok := completionScripts[fs.Arg(0)]
	if fs.NArg() != 1 || !ok {
		return usageError{fmt.Errorf("say 'completion bash', 'completion zsh' or 'completion fish'")}
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// complete prints the words that may follow the typed ones, the last of
// which is the word being completed (maybe empty): a command, then a
// subcommand of a group, then flags of either.
func complete(ctx context.Context, typed []string, stdout io.Writer) {
	if len(typed) == 0 {
		return
	}
	word, before := typed[len(typed)-1], typed[:len(typed)-1]
	var next []string
	if len(before) == 0 {
		for _, c := range commands() {
			next = append(next, c.name)
		}
	} else {
		subs, flags := helpWords(ctx, before[:1])
		switch {
		case len(before) > 1 && slices.Contains(subs, before[1]):
			subs, flags = helpWords(ctx, before[:2])
		case len(before) > 1:
			subs = nil // a subcommand comes right after its group
		}
		next = subs
		if strings.HasPrefix(word, "-") {
			next = flags
		}
	}
	for _, w := range next {
		if strings.HasPrefix(w, word) {
			fmt.Fprintln(stdout, w)
		}
	}
}

var (
	helpFlag       = regexp.MustCompile(`^  (--?[a-z0-9][a-z0-9-]*)\b`)
	helpSubcommand = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\b`)
)

// helpWords runs path (a command, or a command and its subcommand) with
// --help, and reads the subcommands and flags it lists.
func helpWords(ctx context.Context, path []string) (subs, flags []string) {
	var c *command
	for _, cmd := range commands() {
		if cmd.name == path[0] {
			c = &cmd
		}
	}
	if c == nil {
		return nil, nil
	}
	var help bytes.Buffer
	_ = c.run(ctx, append(path[1:len(path):len(path)], "--help"), io.Discard, &help)
	inSubs := false
	for line := range strings.Lines(help.String()) {
		switch {
		case line == "Subcommands:\n":
			inSubs = true
		case line == "\n":
			inSubs = false
		case inSubs && helpSubcommand.MatchString(line):
			subs = append(subs, helpSubcommand.FindStringSubmatch(line)[1])
		case helpFlag.MatchString(line):
			flags = append(flags, helpFlag.FindStringSubmatch(line)[1])
		}
	}
	return subs, flags
}
