package flow

import (
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/jsonstr"
)

// Metadata is the EC2 context of this host, fetched once at start (IMDSv2) by the caller.
// Empty fields are unknown and left out of the records.
type Metadata struct {
	Host       string
	InstanceID string
	Region     string
}

// lineWrapper turns a line into {"data":"<line>","host":...,"instance_id":...,"region":...,
// "path":...}: the fields add_metadata asks for, in this order. The constant fields are
// encoded once; only the line and the path are escaped per line. Used by the tailer's
// goroutine only (it owns buf).
type lineWrapper struct {
	fixed    []byte // the encoded constant fields, each with its leading comma
	withPath bool
	buf      []byte
	path     string // the path pathJSON encodes: a file's lines come in runs
	pathJSON []byte
}

func newLineWrapper(m *config.AddMetadata, md Metadata) *lineWrapper {
	if m == nil {
		return nil
	}
	w := &lineWrapper{withPath: m.FilePath}
	field := func(on bool, name, v string) {
		if on && v != "" {
			w.fixed = append(w.fixed, `,"`+name+`":`...)
			w.fixed = jsonstr.Append(w.fixed, []byte(v))
		}
	}
	field(m.Hostname, "host", md.Host)
	field(m.InstanceID, "instance_id", md.InstanceID)
	field(m.Region, "region", md.Region)
	return w
}

// wrap returns the wrapped line; it is valid until the next call.
func (w *lineWrapper) wrap(line []byte, path string) []byte {
	b := append(w.buf[:0], `{"data":`...)
	b = jsonstr.Append(b, line)
	b = append(b, w.fixed...)
	if w.withPath {
		if path != w.path || w.pathJSON == nil {
			w.path, w.pathJSON = path, jsonstr.Append(append(w.pathJSON[:0], `,"path":`...), []byte(path))
		}
		b = append(b, w.pathJSON...)
	}
	b = append(b, '}')
	w.buf = b
	return b
}
