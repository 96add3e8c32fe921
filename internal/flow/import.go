package flow

import (
	"errors"
	"fmt"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/tailer"
)

// importPositions makes positions another agent left the flow's own, at its first start: in
// the durable set as if positions.json had held them (the tailer resumes each file there),
// and in positions.json at once, so that a crash before the first checkpoint still finds
// them. Files without an imported position still start at start_at (firstStart holds).
func (f *Flow) importPositions(ps []position) error {
	if len(ps) == 0 {
		return nil
	}
	f.pos.replayed(0, ps) // 0: no spool frame set them
	if err := savePositions(f.pos.path, 0, byID(ps), nil, nil); err != nil {
		return fmt.Errorf("flow %s: save imported positions: %w", f.cfg.Name, err)
	}
	f.log.Info("imported positions saved", "files", len(ps))
	return nil
}

func byID(ps []position) map[tailer.FileID]position {
	m := make(map[tailer.FileID]position, len(ps))
	for _, p := range ps {
		m[p.ID] = p
	}
	return m
}

// ErrHasState is returned by ImportPositions for a flow that already ran.
var ErrHasState = errors.New("the flow already has positions or spooled data")

// ImportPositions writes positions into the positions.json of the flow cfg whose state
// directory is dir, for `kinship import-checkpoints`. It holds the flow's spool lock meanwhile,
// so it fails with spool.ErrLocked while an agent runs the flow. A flow that already has state
// (positions.json or spool frames) is refused with ErrHasState unless force; then ps replace
// the positions of the same files and the others are kept.
func ImportPositions(cfg config.Flow, dir string, ps []tailer.Position, force bool) (err error) {
	f, err := New(cfg, Deps{Dir: dir})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.spool.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flow %s: %w", cfg.Name, cerr)
		}
	}()
	seq, found, err := f.pos.load()
	if err != nil {
		return err
	}
	if (found || f.spool.LastSeq() > 0) && !force {
		return fmt.Errorf("flow %s: %w (%s)", cfg.Name, ErrHasState, dir)
	}
	m := byID(f.pos.files())
	for _, p := range ps {
		m[p.ID] = p
	}
	if err := savePositions(f.pos.path, seq, m, nil, nil); err != nil {
		return fmt.Errorf("flow %s: save imported positions: %w", cfg.Name, err)
	}
	return nil
}
