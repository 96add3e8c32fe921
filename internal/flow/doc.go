// Package flow runs one configured flow: tailer → processing → aggregator → spool →
// shipper, and keeps each file's read position durable together with the lines before it.
//
// # Processing (processing.go)
//
// Between the tailer's sink and the aggregator, on the tailer's goroutine: for agent.json
// flows (KeepNewline) the line gets back the '\n' the tailer framed it by (a line the tailer
// cut keeps its truncated_record_terminator instead, as the Kinesis Agent cuts records), then
// the flow's processors run in order (package processing; each as a chain of one, so that
// the stage knows which one dropped a record). A processor's output replaces the record; a
// skip (log_to_json without a match, counted in kinship_processing_skipped_total;
// include/exclude, kinship_lines_filtered_total) ships nothing; an error (or log_to_json
// with on_parse_error: raw) ships the record as read, counted in
// kinship_processing_errors_total and logged at most once a minute. A native flow's
// processed records lose the one trailing '\n' the converters add (its destinations end
// lines themselves); add_metadata wraps what processing produced. A flow with neither
// processors nor KeepNewline has no stage: nothing is done or allocated per line.
//
// A skipped record still moves the file's position past it: the sink calls the
// aggregator's Skip, whose mark travels with the next record sealed for that source or, when
// none is open, in a record of marks only (no data) after every record sealed before it.
// output.Put files such marks under the last frame appended (every line before them is in it
// or earlier) without spooling anything, so they become durable with that frame and reach
// positions.json at the next checkpoint. They are in no frame: a crash before that
// checkpoint reads the skipped records again and skips them again, never sends them.
//
// # Lifecycle
//
//	f, err := flow.New(cfg, deps) // state dir, stale *.tmp swept, spool opened and recovered
//	err = f.Run(ctx, once)        // restore, run until ctx ends (or, with once, until every
//	                              // file is read and acknowledged), stop, save positions
//	st := f.Status()              // any time, from any goroutine; Alive and Healthy likewise
//	st = flow.ReadStatus(name, dir) // the same from disk, with or without a running agent
//
// Run in order: restore (positions.json, then the spool frames after it); the shipper starts
// (so that what the spool holds from before leaves first); the aggregator; the tailer, given
// the restored positions; the checkpoint loop. On stop: the tailer returns, the aggregator
// seals and delivers what it holds (ShutdownGrace bounds a put waiting for spool room), the
// spool is synced, the checkpoint loop stops and one last checkpoint saves the positions,
// the shipper gets drainTimeout for requests in flight, and the spool closes. Every return,
// a failed start included, waits for the shipper first.
//
// # The durability invariant
//
// A position is saved only once every line before it is durable in the spool or at the
// destination. Each spool
// frame (see Envelope below) carries, with its record, the positions it makes durable, so
// the one fsync that makes the record durable makes them durable too. Those marks are low
// watermarks: the aggregator gives, per file, the offset before which every line is in this
// record or an earlier one, never just the end of the record's last line (with one aggregate
// open per shard, a later line can be sealed before an earlier one).
//
// With spool.write: backlog (the default) a record the destination acknowledges before the
// spool's next group commit is never written: the spool writes its stub instead
// (envelopeStub: the envelope without its data, i.e. its marks), and counts it durable once
// that stub is fsynced. Its lines are durable at the destination, so its marks may be saved
// as any durable frame's; Replay returns the stub (spool.Frame.Delivered) and restore replays
// its marks the same way, and Spool.Durable keeps its meaning for the checkpoint loop. A
// crash before the stub is durable re-reads its lines: duplicates of what was acknowledged
// since the last commit, or one interval more behind a record still in flight, which the
// commit leaves in memory and Durable stops before (see package spool, "What is written").
//
// positions.json is a compaction of those marks, not a second source of truth: it holds
// the positions of every frame up to its seq. The checkpoint loop (every CheckpointInterval,
// 1 s) applies the marks of the frames the spool reports durable, in sequence order, and
// saves the file (atomically: temp, fsync, rename, fsync dir) when something changed; only
// then is the spool told (Spool.Checkpoint) that it may delete acknowledged segments up to
// that seq (a failed save is logged and retried the next round). So every frame after the
// snapshot is still on disk (unless when_full: drop_oldest deleted it, the operator's
// explicit choice), and at start restore replays their marks over the snapshot: a crash
// loses at most the last checkpoint interval of positions.json, never a position, and
// re-reads nothing that reached the spool. A frame can be durable before its marks were
// recorded (the spool commits in the background); the snapshot's seq then stays below it so
// that replay still sees it.
//
// Positions of a file the tailer closes (deleted or rotated away and read to its end, or
// truncated) are forgotten with their pending marks; positions of files no longer under
// their path are handed to the tailer once at restore and left out of later snapshots.
// What is kept of a closed file is its retired entry (its last durable position and the seq
// of the last frame holding its lines, the marks of lines sealed after the close included),
// for "is this file shipped?" (shipped.go); at most maxRetired (1024) of them, the oldest
// forgotten first, saved in positions.json but never restored as positions.
//
// # Shipped
//
// A file is shipped (Flow.FileShipped, ReadFileShipped for `kinship status --file`) when
// the flow knows it by identity (device, inode, fingerprint), its durable position is its
// size, the byte before it is a newline, and the spool's acknowledged cursor reached the
// last frame carrying a mark for it. Read from disk, the position is the snapshot's with
// the marks of the frames after it replayed, and every unacknowledged frame is still on disk,
// so the answer may lag but is never ahead. delete_after_shipped (deleter.go) removes, in
// the checkpoint loop after acknowledgements moved, the rotated files its globs match once
// that answer is yes here and in every other flow that reads them (Deps.ShippedElsewhere),
// never the newest file under a paths pattern nor one modified within close_inactive. A position carries the file's identity (device, inode)
// and a fingerprint of its first bytes, so a reused inode is not taken for the old file.
//
// Delivery is at least once: the spool's read cursor moves only on the destination's
// acknowledgement, so the records in flight when the agent died are sent again.
//
// # Goroutines
//
//   - Run's caller: restore, then the tailer's Run, which calls the sink (Open, Line, Close)
//     and through it the processing stage and the aggregator's Add (or Skip); then the stop
//     sequence. Open and Close take the
//     positions' lock; Line blocks when the aggregator does (backpressure).
//   - The aggregator's goroutines: its age timer seals, hash workers, and one delivery
//     goroutine that calls output.Put in sealing order: resolve the marks (positions' lock),
//     compress (kinesis.compression), Spool.AppendShared (may block on a full spool until
//     appendCtx ends, ShutdownGrace after the stop), then record the marks as pending under
//     the frame's seq (positions' lock) and count its bytes (backlog's lock).
//   - The shipper's goroutine reads the spool (spoolSource.Next: decode the envelope, keep
//     the payload in shipped under shippedMu) and its MaxInFlight workers send and ack
//     (spoolSource.Ack: Spool.Ack, health, backlog, and the frame buffer back to the free
//     list). A shipper that fails stops the flow (stopFlow cancels Run's context). When it
//     idles it sets shipperIdle and nudges the aggregator (idleAgg), so that a quiet flow
//     ships at once and a put asks the spool for an early commit.
//   - The checkpoint loop: Spool.Durable, positions.checkpoint (the lock for map work only,
//     the file written outside it), Spool.Checkpoint; delete_after_shipped's sweep (globs,
//     stats, other flows asked through Deps.ShippedElsewhere); then it forgets acknowledged backlog
//     and stores beat, the heartbeat Alive reads (a round wedged on a lock stops it).
//   - The spool's own goroutine: group commits, ack frames, segment deletion.
//   - Callers of Status, Healthy and Alive (the HTTP handlers): short locks only; Status
//     copies the positions and stats the files outside the lock.
//
// Frame buffers go round through bufs, a bounded channel: the aggregator builds each
// aggregate in one (aggregator.Options.Buffers, frameHeadroom free in front), put writes the
// envelope header in front of the data and spools that slice (or, for a small or compressed
// record or a header past the headroom, copies into a buffer of its own and returns the
// aggregator's), the spool hands the same slice to the shipper, the ack (or the spool's
// Buffers.Put) returns it, and putBuf finds its whole buffer through inPlace. The checkpoint
// loop also prunes inPlace entries of frames acknowledged and durable. Contexts: Run's ctx (the stop,
// or the shipper's failure), appendCtx (puts), shipCtx (the shipper; its requests get
// drainTimeout more), ckptCtx (the checkpoint loop).
//
// # State directory (config.Config.FlowDir: <state_dir>/flows/<name>/)
//
//	positions.json   the snapshot of positions (below); written only through atomicfile
//	*.tmp            a positions.json being written when the agent died; removed by New
//	spool/           the spool (see package spool: LOCK, segments, .broken tails)
//
// # positions.json (version 1)
//
//	{"version":1,"seq":4711,"files":[
//	{"dev":2049,"ino":131,"fp_len":1024,"fp_sum":1234567,"path":"/var/log/app.log","offset":9000,...}
//	],"retired":[
//	{"dev":2049,"ino":120,...,"offset":5000,"seq":4700}
//	]}
//
// Compact, one file per line: it is rewritten whole whenever a position moved (each second
// while lines arrive, however many files are watched), and indenting it was most of that
// cost. Any JSON layout reads back (older agents wrote it indented).
//
// seq: every spool frame with a sequence number up to it is reflected in files; the frames
// after it are replayed on top at start. files, sorted by path: identity (dev, ino), the
// fingerprint (FNV-64a of the first fp_len bytes; fp_len 0 matches any content), the path
// last seen, and the offset before which every line is durable. retired (optional; older
// agents ignore it): files the tailer closed, with the seq of the last frame holding their
// lines; the path is where tracking started (a rotated file has another name now). Another version, or a file
// that does not parse, stops the flow with an error naming the file (moved away, the flow
// rebuilds what the frames still in the spool say).
//
// # Envelope (the payload of one spool frame, version 1)
//
//	version    byte 1
//	userRecs   uvarint: lines in the record
//	pk         uvarint length + partition key
//	ehk        uvarint length + explicit hash key (empty: none)
//	marks      uvarint count, then per mark: dev, ino, fpLen uvarint; fpSum 8 bytes little
//	           endian; offset uvarint; path uvarint length + bytes
//	data       the rest: the destination record (KPL aggregate, or one line), compressed
//	           when kinesis.compression is set
//
// Lengths and counts are bounded before anything is allocated. A frame whose envelope does
// not decode was written by an incompatible agent: restore skips its marks (logged), the
// shipper skips and acks it (counted in SpoolCorrupt, logged).
package flow
