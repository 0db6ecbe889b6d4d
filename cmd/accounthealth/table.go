package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// terminalWidth is what the tables fit by default: a terminal opened at
// its usual size, or a little wider.
const terminalWidth = 100

// Held rows are printed, and measured afresh, once they reach either
// bound: a table of every page holds one page at a time.
const (
	tableMaxRows  = 500
	tableMaxBytes = 256 << 10
)

// table lays rows out in columns aligned whatever their content, and
// fitting terminalWidth: it measures the rows it holds, and shortens the
// widest cells of the columns that may be shortened, ending them with "…".
// Ids people paste are never shortened; wide keeps every cell whole.
type table struct {
	w      io.Writer
	header []string
	keep   []bool // by column: never shortened
	wide   bool
	rows   [][]string
	bytes  int
	last   []int // the widths the rows before were printed in
}

// newTable makes a table with these column names; a name ending in "!" is
// a column never shortened (the "!" is not printed).
func newTable(w io.Writer, wide bool, columns ...string) *table {
	t := &table{w: w, wide: wide, keep: make([]bool, len(columns))}
	for i, c := range columns {
		c, t.keep[i] = strings.CutSuffix(c, "!")
		t.header = append(t.header, c)
	}
	return t
}

// add holds a row (one cell per column), printing the held ones first
// when they reach the bounds.
func (t *table) add(cells ...string) error {
	t.rows = append(t.rows, cells)
	for _, c := range cells {
		t.bytes += len(c)
	}
	if len(t.rows) >= tableMaxRows || t.bytes >= tableMaxBytes {
		return t.flush()
	}
	return nil
}

// flush prints the held rows, under the header the first time.
func (t *table) flush() error {
	if len(t.rows) == 0 {
		return nil
	}
	rows := t.rows
	if t.last == nil {
		rows = append([][]string{t.header}, rows...)
	}
	widths := t.widths(rows)
	var b strings.Builder
	for _, row := range rows {
		b.WriteString(fitRow(widths, t.keep, row))
		b.WriteByte('\n')
	}
	t.rows, t.bytes, t.last = t.rows[:0], 0, widths
	_, err := io.WriteString(t.w, b.String())
	return err
}

// widths measures the rows, never narrower than the rows printed before
// them (so that a table of several pages keeps its columns unless a later
// page needs them wider), then narrows the widest column that may be
// narrowed, one character at a time, until a row fits terminalWidth or
// every such column is down to its header's width.
func (t *table) widths(rows [][]string) []int {
	widths := make([]int, len(t.header))
	copy(widths, t.last)
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	if t.wide {
		return widths
	}
	total := 2 * (len(widths) - 1)
	for _, w := range widths {
		total += w
	}
	for ; total > terminalWidth; total-- {
		widest := -1
		for i, w := range widths {
			if !t.keep[i] && w > max(len(t.header[i]), 3) && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		widths[widest]--
	}
	return widths
}

// fitRow writes cells in columns of these widths, two spaces apart: a
// longer cell is cut with "…" unless its column is kept whole, the last
// one is not padded.
func fitRow(widths []int, keep []bool, cells []string) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(fit(c, widths[i], keep[i], i < len(cells)-1))
	}
	return b.String()
}

// fit cuts s to width characters, its last one "…", unless keep; pad
// fills a shorter s with spaces.
func fit(s string, width int, keep, pad bool) string {
	n := utf8.RuneCountInString(s)
	switch {
	case n > width && !keep:
		r := []rune(s)
		return string(r[:max(width-1, 0)]) + "…"
	case pad && n < width:
		return s + strings.Repeat(" ", width-n)
	}
	return s
}

// registerWide adds --wide to the commands that print a table; columns
// names those it adds, if any.
func registerWide(fs *flag.FlagSet, wide *bool, columns string) {
	usage := fmt.Sprintf("print every cell whole, even past %d columns (-o json has every field)", terminalWidth)
	if columns != "" {
		usage = "add the " + columns + " columns and " + usage
	}
	fs.BoolVar(wide, "wide", false, usage)
}

// details is a record for people: a key and a value a line, the values
// aligned and wrapped between words to fit terminalWidth (a longer word,
// such as a token, has a line of its own, whole).
type details struct{ keys, values []string }

func (d *details) row(key, value string) {
	d.keys, d.values = append(d.keys, key), append(d.values, value)
}

func (d *details) print(w io.Writer) error {
	width := 0
	for _, k := range d.keys {
		width = max(width, utf8.RuneCountInString(k))
	}
	indent := strings.Repeat(" ", width+2)
	var b strings.Builder
	for i, k := range d.keys {
		for j, line := range wrap(d.values[i], terminalWidth-len(indent)) {
			if j == 0 {
				b.WriteString(fit(k, width, true, true) + "  ")
			} else {
				b.WriteString(indent)
			}
			b.WriteString(line + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap breaks s between words into lines of at most width characters,
// but for a word longer than that.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines, line = append(lines, line), word
		}
	}
	return append(lines, line)
}
