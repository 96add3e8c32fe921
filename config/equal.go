package config

import (
	"reflect"
	"regexp"
)

// Equal reports whether two flows run the same way, so that a reload can leave an unchanged
// flow alone. Where a flow was written (Pos: file, line, column) does not matter, and a
// compiled regular expression is equal to another compiled from the same source text. Every
// other field, including any added later, counts: the comparison walks the struct rather than
// listing its fields.
func (f Flow) Equal(g Flow) bool {
	return equalValues(reflect.ValueOf(f), reflect.ValueOf(g))
}

var (
	posType    = reflect.TypeFor[Pos]()
	regexpType = reflect.TypeFor[*regexp.Regexp]()
)

func equalValues(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Type() {
	case posType:
		return true
	case regexpType:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		ra, rb := a.Interface().(*regexp.Regexp), b.Interface().(*regexp.Regexp)
		return ra.String() == rb.String()
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValues(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalValues(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() { // nil and empty are the same: "exclude: []" or no exclude
			return false
		}
		for i := range a.Len() {
			if !equalValues(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		iter := a.MapRange()
		for iter.Next() {
			bv := b.MapIndex(iter.Key())
			if !bv.IsValid() || !equalValues(iter.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		// Not configuration: a flow holds none today, and one added later must say how it
		// compares rather than make reloads restart or keep flows by accident.
		panic("config: Flow.Equal cannot compare a field of kind " + a.Kind().String())
	}
	// Unexported fields cannot be turned back into interfaces; compare their bits.
	if !a.CanInterface() {
		return reflect.DeepEqual(valueBits(a), valueBits(b))
	}
	return a.Interface() == b.Interface()
}

func valueBits(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Complex64, reflect.Complex128:
		return v.Complex()
	case reflect.String:
		return v.String()
	}
	return v.String()
}
