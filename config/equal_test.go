package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func parseFlow(t *testing.T, body string) Flow {
	t.Helper()
	cfg, err := Parse("k.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Flows[0]
}

// A reload must leave a flow alone when only its place in the file moved, and restart it
// when anything it runs with changed.
func TestFlowEqualIgnoresPositionNotSettings(t *testing.T) {
	a := parseFlow(t, "flows:\n  - {name: a, paths: [/x/*.log], kinesis: {stream: s, partition_key_regex: 'id=(\\d+)'}, multiline: {start_pattern: '^\\d'}}\n")
	moved := parseFlow(t, "# a comment moves everything down\n\nflows:\n  - name: a\n    paths: [/x/*.log]\n    kinesis: {stream: s, partition_key_regex: 'id=(\\d+)'}\n    multiline: {start_pattern: '^\\d'}\n")
	if a.Pos == moved.Pos {
		t.Fatal("the test needs two positions")
	}
	if a.Multiline.Regexp == moved.Multiline.Regexp {
		t.Fatal("the test needs two compiled regexps")
	}
	if !a.Equal(moved) {
		t.Error("the same flow written on other lines counts as changed")
	}
	for _, changed := range []string{
		"flows:\n  - {name: a, paths: [/x/*.log, /y/*.log], kinesis: {stream: s, partition_key_regex: 'id=(\\d+)'}, multiline: {start_pattern: '^\\d'}}\n",
		"flows:\n  - {name: a, paths: [/x/*.log], kinesis: {stream: s, partition_key_regex: 'id=(\\d+)'}, multiline: {start_pattern: '^\\w'}}\n",
		"flows:\n  - {name: a, paths: [/x/*.log], kinesis: {stream: s, partition_key_regex: 'id=(\\w+)'}, multiline: {start_pattern: '^\\d'}}\n",
		"flows:\n  - {name: a, paths: [/x/*.log], kinesis: {stream: s, partition_key_regex: 'id=(\\d+)'}, multiline: {start_pattern: '^\\d'}, batch: {max_age: 2s}}\n",
		"flows:\n  - {name: a, paths: [/x/*.log], discard: {}, multiline: {start_pattern: '^\\d'}}\n",
	} {
		if a.Equal(parseFlow(t, changed)) {
			t.Errorf("a changed flow counts as unchanged: %s", changed)
		}
	}
}

// Every setting of a flow counts: the test changes each leaf field of a flow in turn (found
// by reflection, so a field added later is covered without touching the test) and expects
// Equal to see it. Only Pos may be ignored.
func TestFlowEqualSeesEveryField(t *testing.T) {
	var base Flow
	fill(reflect.ValueOf(&base).Elem(), 1)
	if !base.Equal(base) {
		t.Fatal("a flow differs from itself")
	}
	var copyOf Flow
	fill(reflect.ValueOf(&copyOf).Elem(), 1)
	if !base.Equal(copyOf) {
		t.Fatal("two flows built the same way differ")
	}
	leaves := 0
	for _, path := range leafPaths(reflect.TypeFor[Flow](), nil) {
		var changed Flow
		fill(reflect.ValueOf(&changed).Elem(), 1)
		leaf := reflect.ValueOf(&changed).Elem().FieldByIndex(path)
		fill(leaf, 2)
		name := fieldName(reflect.TypeFor[Flow](), path)
		ignorable := strings.HasPrefix(name, "Pos.")
		if changed.Equal(base) != ignorable {
			t.Errorf("changing %s: Equal = %v", name, changed.Equal(base))
		}
		leaves++
	}
	// A pattern compiled again from the same text is the same setting.
	recompiled := base
	m := *base.Multiline
	m.Regexp = regexp.MustCompile(base.Multiline.Regexp.String())
	recompiled.Multiline = &m
	if !recompiled.Equal(base) {
		t.Error("a regexp compiled again from the same text counts as a change")
	}
	if leaves < 30 {
		t.Errorf("only %d fields visited: the walk misses some", leaves)
	}
}

// leafPaths lists the index paths of every field that is not a struct or a pointer to one
// (those are walked into).
func leafPaths(t reflect.Type, prefix []int) [][]int {
	var out [][]int
	for i := range t.NumField() {
		f := t.Field(i)
		path := append(append([]int(nil), prefix...), i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft != reflect.TypeFor[*regexp.Regexp]() {
			ft = ft.Elem()
			// FieldByIndex walks through the pointer; a struct without fields (Discard) is a
			// leaf: its presence is the setting.
			if ft.NumField() == 0 {
				out = append(out, path)
				continue
			}
		}
		if ft.Kind() == reflect.Struct && ft.NumField() > 0 {
			out = append(out, leafPaths(ft, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

func fieldName(t reflect.Type, path []int) string {
	var names []string
	for _, i := range path {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		f := t.Field(i)
		names = append(names, f.Name)
		t = f.Type
	}
	return strings.Join(names, ".")
}

// fill sets every field under v to a value derived from seed: two seeds give values that
// differ in every leaf. Pointers to structs are allocated (seed 2 of an empty struct
// pointer is nil, so that its presence changes).
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed)
		}
	case reflect.Pointer:
		if v.Type() == reflect.TypeFor[*regexp.Regexp]() {
			v.Set(reflect.ValueOf(regexp.MustCompile("x" + strings.Repeat("y", seed))))
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct && v.Type().Elem().NumField() == 0 && seed == 2 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), seed)
	case reflect.String:
		v.SetString(strings.Repeat("s", seed))
	case reflect.Bool:
		v.SetBool(seed == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[Duration]() {
			v.SetInt(int64(seed) * int64(time.Second))
			return
		}
		v.SetInt(int64(seed))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), seed, seed)
		for i := range seed {
			fill(s.Index(i), seed)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		e := reflect.New(v.Type().Elem()).Elem()
		fill(k, seed)
		fill(e, seed)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		panic("fill: add kind " + v.Kind().String())
	}
}
