package faultproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// wire is a PutRecords protocol: JSON (application/x-amz-json-1.1) or CBOR
// (application/x-amz-cbor-1.1). Entries are kept opaque (json.RawMessage or cbor.Value), so
// what is forwarded is what the client sent.
type wire interface {
	contentType() string
	parseRequest(body []byte) (putRecordsRequest, error)
	parseResult(body []byte) (putRecordsResult, error)
	encodeResult(putRecordsResult) []byte
	failure(code, msg string) any
	writeError(w http.ResponseWriter, status int, typ, msg string)
}

type putRecordsRequest struct {
	entries []any
	rebuild func(keep []any) []byte // the request with only keep as its records
}

type putRecordsResult struct {
	failed     int
	records    []any
	encryption any // nil when absent
}

func wireFor(contentType string) wire {
	if strings.HasPrefix(contentType, "application/x-amz-cbor") {
		return cborWire{}
	}
	return jsonWire{}
}

type jsonWire struct{}

func (jsonWire) contentType() string { return "application/x-amz-json-1.1" }

func (jsonWire) parseRequest(body []byte) (putRecordsRequest, error) {
	var top map[string]json.RawMessage
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return putRecordsRequest{}, err
	}
	if err := json.Unmarshal(top["Records"], &raw); err != nil {
		return putRecordsRequest{}, fmt.Errorf("records: %w", err)
	}
	entries := make([]any, len(raw))
	for i, e := range raw {
		entries[i] = e
	}
	return putRecordsRequest{entries: entries, rebuild: func(keep []any) []byte {
		top["Records"], _ = json.Marshal(keep)
		b, _ := json.Marshal(top)
		return b
	}}, nil
}

func (jsonWire) parseResult(body []byte) (putRecordsResult, error) {
	var r struct {
		FailedRecordCount int
		Records           []json.RawMessage
		EncryptionType    *string
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return putRecordsResult{}, err
	}
	out := putRecordsResult{failed: r.FailedRecordCount}
	for _, e := range r.Records {
		out.records = append(out.records, e)
	}
	if r.EncryptionType != nil {
		out.encryption = *r.EncryptionType
	}
	return out, nil
}

func (jsonWire) encodeResult(r putRecordsResult) []byte {
	m := map[string]any{"FailedRecordCount": r.failed, "Records": r.records}
	if r.encryption != nil {
		m["EncryptionType"] = r.encryption
	}
	b, _ := json.Marshal(m)
	return b
}

func (jsonWire) failure(code, msg string) any {
	b, _ := json.Marshal(map[string]string{"ErrorCode": code, "ErrorMessage": msg})
	return json.RawMessage(b)
}

func (w jsonWire) writeError(rw http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	writeErrorBody(rw, w.contentType(), status, typ, b)
}

type cborWire struct{}

func (cborWire) contentType() string { return "application/x-amz-cbor-1.1" }

func (cborWire) parseRequest(body []byte) (putRecordsRequest, error) {
	v, err := cbor.Decode(body)
	if err != nil {
		return putRecordsRequest{}, err
	}
	top, ok := v.(cbor.Map)
	if !ok {
		return putRecordsRequest{}, fmt.Errorf("body is %T, not a map", v)
	}
	list, ok := top["Records"].(cbor.List)
	if !ok {
		return putRecordsRequest{}, fmt.Errorf("records are %T, not a list", top["Records"])
	}
	entries := make([]any, len(list))
	for i, e := range list {
		entries[i] = e
	}
	return putRecordsRequest{entries: entries, rebuild: func(keep []any) []byte {
		l := make(cbor.List, len(keep))
		for i, e := range keep {
			l[i] = e.(cbor.Value)
		}
		top["Records"] = l
		return cbor.Encode(top)
	}}, nil
}

func (cborWire) parseResult(body []byte) (putRecordsResult, error) {
	v, err := cbor.Decode(body)
	if err != nil {
		return putRecordsResult{}, err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return putRecordsResult{}, fmt.Errorf("answer is %T, not a map", v)
	}
	out := putRecordsResult{}
	if n, ok := m["FailedRecordCount"].(cbor.Uint); ok {
		out.failed = int(n)
	}
	list, _ := m["Records"].(cbor.List)
	for _, e := range list {
		out.records = append(out.records, e)
	}
	if e, ok := m["EncryptionType"]; ok {
		out.encryption = e
	}
	return out, nil
}

func (cborWire) encodeResult(r putRecordsResult) []byte {
	l := make(cbor.List, len(r.records))
	for i, e := range r.records {
		l[i] = e.(cbor.Value)
	}
	m := cbor.Map{"FailedRecordCount": cbor.Uint(r.failed), "Records": l}
	if r.encryption != nil {
		m["EncryptionType"] = r.encryption.(cbor.Value)
	}
	return cbor.Encode(m)
}

func (cborWire) failure(code, msg string) any {
	return cbor.Map{"ErrorCode": cbor.String(code), "ErrorMessage": cbor.String(msg)}
}

func (w cborWire) writeError(rw http.ResponseWriter, status int, typ, msg string) {
	writeErrorBody(rw, w.contentType(), status, typ, cbor.Encode(cbor.Map{"__type": cbor.String(typ), "message": cbor.String(msg)}))
}

func writeErrorBody(w http.ResponseWriter, contentType string, status int, typ string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
