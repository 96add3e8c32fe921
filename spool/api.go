package spool

import "errors"

// Frame is one record read back from the spool.
type Frame struct {
	Seq     uint64 // assigned by Append, strictly increasing across restarts
	Payload []byte // owned by the caller
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool: closed")
