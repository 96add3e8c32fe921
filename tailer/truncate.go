package tailer

import "time"

// cutLogEvery spaces the warnings that lines are being cut: one per event would flood the
// log exactly when a writer goes wrong.
const cutLogEvery = time.Minute

// noteCut counts n lines (or multiline events) of path cut at limit bytes, and says so at
// most once per cutLogEvery, with the count since the last warning.
func (t *Tailer) noteCut(path string, n, limit int) {
	t.m.LinesTruncated.Add(float64(n))
	t.cutSince += n
	if now := time.Now(); now.Sub(t.cutLogged) >= cutLogEvery {
		t.log.Warn("tailer: lines longer than the line limit are being cut (kinship_lines_truncated_total)",
			"path", path, "limit", limit, "lines_cut", t.cutSince)
		t.cutLogged, t.cutSince = now, 0
	}
}
