package pipelines

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Pos is a position in a spec: file, line and column (both from 1). A
// position outside any file (a --set value) has only File, e.g.
// "--set epochs=abc".
type Pos struct {
	File      string // as given to Parse, or "--set name=value"
	Line, Col int    // from 1; 0 when unknown
}

// String formats p as file:line:col (file:line when the column is unknown,
// file alone when the line is).
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Error is one problem in a spec, at a position.
type Error struct {
	Pos Pos    // where
	Msg string // what, without the position
}

// Error formats the problem as "file:line:col: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors returns the individual problems in an error returned by Parse or
// Load, in the order of their positions. It returns nil for nil and a
// one-element slice for an error that is not a list of problems.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if m, ok := err.(*multierror.Error); ok {
		return m.WrappedErrors()
	}
	return []error{err}
}

// Limits on how many problems are reported, so that a mistake repeated by a
// large matrix stays readable.
const (
	maxErrors       = 100
	maxErrorsPerPos = 3
)

// errList collects the problems of one spec.
type errList struct {
	errs    []*Error
	seen    map[string]bool
	perPos  map[Pos]int
	dropped int
	// reported counts every problem added, repeats and dropped ones too:
	// whether a step found a problem.
	reported int
}

func (l *errList) add(pos Pos, format string, args ...any) {
	l.reported++
	msg := fmt.Sprintf(format, args...)
	if l.seen == nil {
		l.seen, l.perPos = map[string]bool{}, map[Pos]int{}
	}
	id := pos.String() + "\x00" + msg
	if l.seen[id] {
		return
	}
	l.seen[id] = true
	if l.perPos[pos] >= maxErrorsPerPos || len(l.errs) >= maxErrors {
		l.dropped++
		return
	}
	l.perPos[pos]++
	l.errs = append(l.errs, &Error{Pos: pos, Msg: msg})
}

// addErr records err, keeping its own position if it is an *Error.
func (l *errList) addErr(pos Pos, err error) {
	if e, ok := err.(*Error); ok {
		l.add(e.Pos, "%s", e.Msg)
		return
	}
	l.add(pos, "%s", err.Error())
}

func (l *errList) ok() bool { return len(l.errs) == 0 }

// err returns the problems as one error, sorted by position, or nil.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].Pos, l.errs[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	m := &multierror.Error{ErrorFormat: formatErrors}
	for _, e := range l.errs {
		m.Errors = append(m.Errors, e)
	}
	if l.dropped > 0 {
		last := l.errs[len(l.errs)-1].Pos
		m.Errors = append(m.Errors, &Error{Pos: Pos{File: last.File}, Msg: fmt.Sprintf("and %d more problems like these", l.dropped)})
	}
	return m
}

// formatErrors prints one problem a line, as compilers do.
func formatErrors(errs []error) string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// quoteList formats names as "a", "b" and "c" for messages.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	switch len(q) {
	case 0:
		return "none"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// errSilent marks a failure already reported.
var errSilent = &Error{Msg: "(reported above)"}
