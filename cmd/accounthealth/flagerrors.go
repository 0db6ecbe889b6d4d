package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// parseArgs runs fs.Parse without the flag package's own reporting (the
// error, then the whole usage): --help prints the usage, and a wrong flag
// is one line naming it as the user typed it, the closest flag there is,
// and the help page of this very command.
func parseArgs(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		return flagError{usageError{explainFlagError(fs, err)}, fs.Name()}
	}
	return nil
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	badFlagValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): (.*)$`)
	missingValue  = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
)

// explainFlagError words the flag package's errors for a person.
func explainFlagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		if near := closestFlag(fs, m[1]); near != "" {
			return fmt.Errorf("unknown flag %s; did you mean %s?", dashed(m[1]), dashed(near))
		}
		return fmt.Errorf("unknown flag %s", dashed(m[1]))
	}
	if m := missingValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s needs a value", dashed(m[1]))
	}
	if m := badFlagValue.FindStringSubmatch(msg); m != nil {
		value, name, why := m[1], m[2], m[3]
		f := fs.Lookup(name)
		switch {
		case f == nil:
		case isDuration(f):
			return fmt.Errorf("%s: %q is not a duration: write it with its unit, e.g. 5s, 2m or 720h", dashed(name), value)
		case isBool(f):
			return fmt.Errorf("%s: %q is not true or false", dashed(name), value)
		}
		return fmt.Errorf("%s: %q: %s", dashed(name), value, strings.TrimPrefix(why, "parse error"))
	}
	return err
}

func isDuration(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, isDur := g.Get().(time.Duration)
	return isDur
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dashed writes a flag as the help shows it: --name, or -o for one letter.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// closestFlag is the flag of fs nearest to name (by edit distance, or the
// one name is a prefix of), "" when none is near.
func closestFlag(fs *flag.FlagSet, name string) string {
	best, bestDist := "", len(name)/2+1
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
