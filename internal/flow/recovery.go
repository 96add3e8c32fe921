package flow

import (
	"errors"
	"fmt"

	"github.com/kinship-agent/kinship/tailer"
)

// errStopReplay ends a replay at the first frame the spool reported lost.
var errStopReplay = errors.New("flow: stop replay")

// seqMark is a file's position as the mark of frame seq left it.
type seqMark struct {
	seq uint64
	pos position
}

// rollBackLost makes the positions claim nothing the spool lost to damage (issue 13.5):
// lost is the first seq above the acknowledged cursor that recovery destroyed, snapSeq the
// seq of the positions snapshot loaded, before the latest mark of each file among the frames
// before lost that are still on disk (replayed only when lost <= snapSeq). The marks of frames
// at or after lost were not applied by restore. A file whose snapshot position came from a
// frame at or after lost goes back to its mark in before, or to the start of the file when no
// frame before lost is left to say (its earlier frames were acknowledged and deleted): its
// lines are read again, duplicates rather than loss. The result is saved at once, under the
// spool's last seq, and only then is the spool told (RecoveryHandled): until then it reports
// the loss again at every Open, so a crash or a failed save here cannot bring back the old
// snapshot with nothing left to say it is wrong.
func (f *Flow) rollBackLost(lost, snapSeq uint64, before map[tailer.FileID]seqMark) error {
	rolled, toStart := 0, 0
	if lost <= snapSeq {
		for id, p := range f.durable {
			if f.markSeq[id] < lost {
				continue // no lost frame moved it (0: a start position, or an older snapshot)
			}
			if b, ok := before[id]; ok {
				f.durable[id], f.markSeq[id] = b.pos, b.seq
			} else {
				p.Offset = 0
				f.durable[id] = p
				delete(f.markSeq, id)
				toStart++
			}
			rolled++
		}
		for id, b := range before {
			if _, ok := f.durable[id]; !ok {
				// Closed since (rotated away, say): its lines in the lost frames may still be
				// in the rotated file, which the tailer matches by identity.
				f.durable[id], f.markSeq[id] = b.pos, b.seq
				rolled++
			}
		}
	}
	seq := f.spool.LastSeq()
	if err := savePositions(f.positionsPath(), seq, f.durable, f.markSeq); err != nil {
		return fmt.Errorf("flow %s: save positions rolled back after spool damage: %w", f.cfg.Name, err)
	}
	f.savedSeq = seq
	if err := f.spool.RecoveryHandled(); err != nil {
		return fmt.Errorf("flow %s: %w", f.cfg.Name, err)
	}
	f.log.Error("spool lost frames to damage; positions rolled back so their lines are read again from the files",
		"first_lost_seq", lost, "snapshot_seq", snapSeq, "files_rolled_back", rolled, "files_from_start", toStart)
	return nil
}
