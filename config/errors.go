package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a place in a configuration file; Line and Column are 1-based, 0 when unknown.
type Pos struct {
	File         string
	Line, Column int
}

// String gives "file:line:column", leaving out what is unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem found in a configuration file.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ValidationError holds every problem found by Load or Parse, sorted by file (in load
// order) and position, so an operator fixes them all in one go.
type ValidationError struct {
	Errors []*Error
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, err := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap exposes the problems to errors.Is and errors.As.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, err := range e.Errors {
		out[i] = err
	}
	return out
}

// problems collects errors across all files of one Load.
type problems struct {
	files []string // load order, for sorting
	errs  []*Error
	// warns are sentences about settings that work, but not as the operator may think
	// (Config.Warnings).
	warns []string
}

func (p *problems) warn(format string, args ...any) {
	p.warns = append(p.warns, strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", `\n`))
}

func (p *problems) add(pos Pos, format string, args ...any) {
	// One problem per line, whatever the user's regexp or the parser put in the message.
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", `\n`)
	p.errs = append(p.errs, &Error{Pos: pos, Msg: msg})
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	order := func(f string) int {
		if i := slices.Index(p.files, f); i >= 0 {
			return i
		}
		return len(p.files)
	}
	errs := slices.Clone(p.errs)
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(order(a.Pos.File), order(b.Pos.File)),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
		)
	})
	// A merged (<<) mapping is walked once per flow that uses it; say each problem once.
	errs = slices.CompactFunc(errs, func(a, b *Error) bool { return *a == *b })
	return &ValidationError{Errors: errs}
}
