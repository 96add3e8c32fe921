// Package spool keeps a flow's records in append-only segment files on local disk until the
// destination has acknowledged them. Frames are opaque bytes to the spool.
//
// # Directory
//
//	(the directory itself)       flock(2)ed while a Spool has it open (one spool per dir); a
//	                             LOCK file left by older versions is not used
//	00000000000000000001.seg     a segment, named by the sequence number of its first data frame (%020d)
//	00000000000000004711.seg     the newest segment is the active one; only it is ever written
//	*.tmp                        half-made files (a segment header being created); removed at Open
//	<segment>.<offset>.broken    the tail cut off a segment by recovery, kept for post-mortems
//	<segment>.0.broken           a segment set aside whole by recovery (its header is invalid)
//	LOST                         the first seq recovery destroyed, until the caller has rolled back
//	                             its own state (Spool.RecoveryHandled)
//
// The lock is on the directory, not on a file in it, so deleting files cannot let a second
// Spool in (Open fails with ErrLocked). Removing or replacing the directory itself can: a
// running spool notices after its next commit that Dir no longer names the directory it
// locked, logs it and fails every Append with ErrLockLost from then on.
//
// Directories are 0700, files 0600. A segment comes into existence through one helper: the
// header is written to a <name>.<random>.tmp file (internal/atomicfile), fsynced, closed, renamed to its final name and the
// directory is fsynced, so a segment file never exists without a complete header. A deleted
// segment is followed by a directory fsync too.
//
// Before a data frame is written, the active segment's disk blocks are reserved up to its end and
// up to 8 MiB further, never past SegmentBytes (fallocate with FALLOC_FL_KEEP_SIZE: writing into
// reserved blocks spares the kernel its per-page delayed allocation: a third less CPU in
// BenchmarkAppendDisk, see preallocLocked). The file's size does not change, so recovery, Inspect
// and the readers see only the bytes written, as without it; after a power loss, a size that covers
// reserved blocks whose data never reached the disk reads as zeros, which recovery cuts as a torn
// tail that held nothing. Sealing the segment (a truncate to its own size) or closing the spool
// gives the rest of the reserve back; MaxBytes and the Budget count sizes, so the disk may hold up
// to 8 MiB more than they say while a backlog is written. Stubs and ack frames reserve nothing, and
// a failure (a full disk, a file system without fallocate) only means the writes allocate as they
// go.
//
// # Segment header (32 bytes)
//
//	0  magic    [8]byte "kinspool"
//	8  version  uint32 little endian, 1
//	12 reserved uint32, 0
//	16 firstSeq uint64, equal to the number in the file name
//	24 crc      uint32 CRC32-Castagnoli of bytes [0,24)
//	28 reserved uint32, 0
//
// # Frame (24-byte header, then the payload, then zero padding to a multiple of 8)
//
//	0  type     uint8: 0 invalid (so zeroed pages are never taken for data), 1 data, 2 ack,
//	            3 delivered (a data frame's stub, see "What is written" below)
//	1  codec    uint8: how the payload is stored: 0 raw, 1 S2 block, 2 zstd frame (ack and
//	            delivered: 0)
//	2  reserved 2 bytes, 0
//	4  length   uint32 stored payload length (0 for ack frames); bounded by what is left in
//	            the file before anything is allocated
//	8  seq      uint64: data and delivered frames: the sequence number; ack frame: the
//	            acknowledged cursor
//	16 crc      uint32 CRC32-Castagnoli of header bytes [0,16) followed by the stored payload
//	20 reserved uint32, 0
//
// Every header starts 8-byte aligned (which is what lets a reader find the next frame after
// corrupt bytes). Data frames (and delivered frames, which take a data frame's place: below,
// "data frame" means either where seqs are concerned) in a segment carry consecutive
// sequence numbers starting at the segment's firstSeq; sequence numbers grow strictly across segments
// (gaps are allowed: they mark frames that were never durable, see below) and across restarts,
// because the newest segment is never deleted: its name (when empty) or its last data frame
// gives the next sequence number.
//
// # Compression
//
// With Options.Compression each data frame's payload is compressed on its own (a frame is
// the unit that is read, acked, cut by recovery and dropped, so no frame depends on
// another); a payload that would not take fewer bytes on disk is stored raw. Byte 1 of the
// header names the codec: it was reserved (0) before, so older segments read as raw frames,
// and every codec is read whatever the spool is opened with: changing the setting or
// turning it off never strands data. The CRC covers the stored (compressed) bytes, so a
// damaged frame is caught before the decoder sees it; recovery and Inspect check only the
// CRC and never decompress. A frame whose CRC is right but which does not decode (or claims
// to decode to more than MaxPayload: the output length is read from the codec's own header
// and checked before any buffer is allocated) is corrupt, like a CRC mismatch. MaxBytes and
// the SpoolBytes gauge count bytes on disk, so the same budget holds several times more log
// data; SpoolAppendedBytes/SpoolStoredBytes is the achieved ratio. The in-memory cache keeps
// the uncompressed payloads, so recent frames are never decompressed.
//
// S2 is the default: it packs log lines several times at a cost that compression only when a
// backlog builds keeps off the common path; zstd packs tighter for several times the CPU and,
// running in Append on the committer's goroutine, would cap a busy flow's throughput. It is
// there for hosts where disk is scarcer than CPU. The measurements behind this choice are in
// bench/README.md (make bench-spool).
//
// Compression starts with a backlog (Options.CompressBacklog: unacknowledged frames times the
// payload's size above MaxBytes/4, at most 64 MiB): a frame that the destination takes
// within moments is never read back from disk, so compressing it would only spend CPU (a third
// of the pipeline's when measured: bench/README.md). While the destination keeps up frames go raw;
// when it slows down or is cut, the frames that will sit on disk are compressed, which is
// when the disk budget matters. make bench (discard, always keeping up) then runs as with
// none.
//
// # What is written (Options.Write; the config's spool.write)
//
// WriteAlways (spool.write: always) writes every frame when it is appended, as described
// below. WriteBacklog (spool.write: backlog, the config's default) writes only what needs
// it. A destination that keeps up acknowledges a record moments after it is appended, and
// a record Kinesis accepted is durable there: writing and fsyncing it too costs disk and
// CPU (bench/README.md has the figure) for nothing. So Append keeps the frame in memory
// (Options.Stub of it computed at once, since the caller may recycle the payload after the
// Ack) and Next hands it out at once, before it is durable.
//
// The group commit (every FsyncInterval) writes what needs it, in seq order: a frame
// already acknowledged as a delivered frame (type 3) whose payload is its stub (for the
// flow: the envelope without the record, i.e. the file positions the record made durable
// at the destination); a frame not acknowledged as its data frame, exactly as WriteAlways
// would have, but only once it is a backlog: appended at least FsyncInterval before the
// commit. It stops at the first younger frame not acknowledged (in flight, most likely,
// its answer a few tens of ms away) and leaves it and everything after it to the next
// commit, which comes an interval later even if nothing else arms the timer. Then the ack
// frame, then one fsync. While the destination keeps up, the disk sees ~100 bytes per
// record and no record; when it slows down or is cut, a frame not acknowledged reaches the
// disk one to two intervals after its append (WriteAlways: within one). Sync, Close and a
// roll write every frame, however young. Stubs of acknowledged frames are also written
// (not fsynced) as soon as the cursor moves, with the ack frame, so that a kill -9 does
// not undo acknowledgements (see writeAcks).
//
// Every seq still gets a frame on disk, so the seq order, recovery, the cursor, Replay,
// Inspect, drop_oldest and the budget need no notion of a gap. Recovery, Replay and Inspect
// read a delivered frame as a data frame for the seq order; Inspect does not count it as
// unacknowledged; Replay returns it with Frame.Delivered (the caller replays the positions
// in its stub); Next never hands it out: one above the cursor found at Open (acked out of
// order, its cursor's ack frame not durable) counts as returned and acknowledged, so the
// cursor moves past it. An ack frame never names a seq past the last frame written to the
// segment (acks run ahead of the writes now): the next frame follows without a gap, and
// Open, which takes the next seq from the cursor too, never skips seqs.
//
// Durable keeps its meaning: every frame up to it is on disk and fsynced, as its data or as
// its delivered stub (its record then durable at the destination). A commit writes a
// prefix of the frames in memory, so Durable is the end of that prefix: never past a frame
// still in flight that the commit left in memory. The caller saves state derived from
// frames up to Durable, as before, so a position is never ahead of lines durable in the
// spool or at the destination. The crash windows:
//   - acknowledged, stub not yet written, then kill -9: the frame was never on disk and
//     Durable never reached it, so its positions were never saved: its lines are read
//     again. Its seq is given out again, as those of frames a power loss cut off: nothing
//     refers to it. A stub waits for the background goroutine (moments), or, behind a
//     frame still in flight, until that one is acknowledged or a backlog (one interval).
//   - acknowledged, stub in the page cache, then power loss before the commit: likewise.
//     So the duplicates a crash makes of acknowledged records are those acknowledged since
//     the last commit plus, at most, one more commit interval of them (held behind a frame
//     in flight).
//   - stub fsynced, positions file not yet saved: Replay returns the stub and the caller
//     rebuilds the positions from it; nothing is read again.
//   - in flight (handed out, not acknowledged) at a crash: a commit may have written it
//     (it was a backlog: sent again from the spool) or not (its lines are read again and
//     packed anew): the duplicates are bounded by what was in flight, as before, but are
//     lines, not the same record.
//   - not handed out yet at a crash: in memory only, never durable, read again from the
//     files: no duplicate.
//
// Memory. The frames Next has not handed out are the spool's own memory: their payloads
// are counted (pendHeld) and bounded by MaxHeldBytes. Past it Append waits for Next while
// the destination keeps up (the oldest frame neither written nor acknowledged is younger
// than FsyncInterval): the shipper is the bottleneck, and backpressure costs nothing where
// writing would. Once that frame is a backlog (or with FsyncInterval < 0, at once) Append
// commits everything first and goes on, as WriteAlways would have written it. The frames
// in flight are the caller's to bound (the shipper's requests); a commit writes them from
// the caller's memory and keeps them by reference until its fsync (the rewrite after a
// failed fsync needs them), not copied: an Ack in that window tells the caller not to
// recycle the payload (AckFrame) and the spool hands it to Options.Buffers once durable. A
// commit's payload writes happen without mu; Ack of such a frame waits until they are done
// (page cache, no fsync). Append also commits everything first when what a commit would
// write of its own memory (the frames not handed out, and written bytes not yet fsynced)
// reaches 16 MiB or twice SyncBytes, and commits when the records acknowledged since the
// last commit reach four times that (what a crash makes the caller read again; if frames in
// flight before them hold their stubs back, everything is written), and waits (retrying)
// while that commit fails: on a full disk a backlog stops the tailer as with always, and a
// destination that keeps up lets a flow go on only until that bound. SyncBytes commits
// nothing early otherwise: frames are written once they are a backlog, whatever their bytes.
// Stats.MemoryBytes counts this memory: the frames not handed out, the bytes written and not
// yet fsynced, and the cache.
//
// Read-back. A frame a commit wrote before Next took it is handed out from the cache
// (CacheBytes) or read back from disk, one frame per Next (the shipper bounds what it holds),
// into a buffer from Options.Buffers. Next stops its disk reader whenever it takes a frame
// from memory; it starts again right after the last frame it handed out (where a commit or
// the reader saw it end on disk), not at the start of the segment, and frames it steps over
// (delivered stubs, frames handed out already) are checksummed in its read buffer, never
// copied into a payload buffer. A payload read and not handed out goes back to Buffers.
//
// Frames in memory count towards MaxBytes and the Budget at their full size until they are
// acknowledged (a commit would write them), and towards the roll (SegmentBytes), so bounds
// and segments stay as with always. A write error in a commit leaves the frames written
// before it written and the rest in memory for the next commit. SyncSoon does nothing (Next
// does not wait for commits), and Checkpoint asks only for the deletion of segments, not
// for a commit. Stats.Delivered counts the frames that were never written. A spool written
// in backlog mode is read by older versions as damaged at the first delivered frame
// (unknown type): they cut it there and re-read those lines (duplicates, not loss);
// downgrades should switch to always and restart first.
//
// # Durability
//
// Append only writes into the page cache (WriteAlways; see above for WriteBacklog). A group commit (background, every FsyncInterval or
// as soon as SyncBytes are unsynced; or an explicit Sync; or a segment roll) first appends an
// ack frame when the acknowledged cursor moved, then fsyncs the active segment once: one fsync
// makes data and the cursor durable together. Next hands out only durable frames.
//
// # Write errors and a full disk
//
// A failed write (ENOSPC above all) is cut back to the frame's start (if even that fails, the
// next frame overwrites it), so a half frame is never followed by data. Append does not
// return the error: it waits and writes again after a backoff doubling from 50ms to 5s
// (backpressure: the tailer stops reading, the log files are the buffer), until it succeeds,
// its ctx is done or the spool is closed. The same holds when creating a segment fails.
//
// A failed fsync means the kernel may have dropped the dirty pages of everything written
// since the previous good fsync, and it reports that once: a second fsync of the same file
// may succeed without the data being on disk. So the spool never trusts that file again. It
// keeps, in memory, the active segment's bytes since its last good fsync (about SyncBytes;
// Append commits itself when it reaches 16 MiB or twice SyncBytes, so memory stays bounded
// even when only Sync and rolls would commit). That copy is the write buffer itself: frames
// are assembled and compressed into reused memory and written from there, and a large
// AppendShared payload is kept by reference (its buffer is not recycled before it is
// durable), so it costs no extra copy of the data. After a failed fsync it cuts the old
// segment back to its durable offset, seals it, and writes that copy into a new segment named
// after the first seq that is not durable (when the old segment holds no durable data frame,
// the new file replaces it under the same name), then fsyncs the new segment. Only then are
// those frames durable; until then Append waits and the background goroutine retries the
// rewrite with the same backoff. Sequence numbers do not change, so the caller's positions
// stay right and nothing is lost or re-read. If cutting the old segment fails, it may keep
// frames that the new segment holds too: recovery cuts an older segment where the next one
// begins.
//
// Every failed write or fsync is counted in kinship_spool_write_errors_total; one log line
// says when writes start failing, one when they work again, and a reminder at most once a
// minute in between. Stats.WriteError (kinship status, health) shows the failure while it lasts.
// The process never exits because of it.
//
// # Recovery (Open)
//
// Every segment is read from its header: frames are accepted while the type is known, reserved
// bytes are zero, the length fits in what is left of the file, the CRC matches and data frames
// carry the next sequence number. In a sealed segment (every segment but the newest: all its
// bytes were fsynced before the next one was created), at a frame that fails any check the
// scan resynchronises: it tries every following 8-byte aligned offset for a complete frame with a matching CRC
// whose seq fits what the skipped bytes could have held (every frame takes at least 24 bytes,
// so k skipped bytes hide at most k/24 frames: a data frame needs last < seq <= last+1+k/24,
// an ack frame seq <= that bound; stale frames of other segments or spools in reused blocks
// fail it). If one exists, the bad bytes are corruption inside the segment (a flipped bit, a
// zeroed page): they stay in place, are logged, and the frames after them are kept; the
// reader (Next), Replay and Inspect step over them the same way, and Next counts each skip in
// SpoolCorrupt. If none exists, the bad bytes are a torn or garbage tail. The newest segment
// is never resynchronised at Open: a power loss may keep a later page of it without an earlier
// one, so frames after bad bytes there may never have been durable, and keeping them would let
// the caller's Replay move its positions past the lost frame; its first bad frame starts a torn
// tail. A torn tail is cut: the rest of the file is copied to a .broken file (its first
// 16 MiB) and the segment is truncated there. A segment whose header is invalid is renamed to
// <segment>.0.broken whole. A complete, valid frame is never discarded. When a segment holds
// frames that the next segment holds too (a failed fsync was repaired but the old segment could
// not be cut back), the older segment is cut where the next one begins. The acknowledged
// cursor is the highest ack frame found, or the sequence number before the oldest segment's first, whichever is higher: segments are only
// deleted once an ack frame covering them is durable.
//
// Open reports what it destroyed (Spool.Recovery, counted in kinship_spool_lost_frames_total
// and kinship_spool_lost_bytes_total, one ERROR line): the data frames and bytes it cut or set
// aside, and the lowest seq above the acknowledged cursor that may be gone, frames skipped
// inside sealed segments included. The frames are opaque here, but the caller derives state
// from them: a frame that was durable before the damage may be covered by the caller's saved
// positions, and a frame surviving after a lost one carries positions past lines that only
// the lost frame held. So the caller rebuilds its positions from the frames before that seq
// and reads the rest again from its source (duplicates, not loss). The count of frames lost in
// a cut is the highest seq still readable in the cut bytes (or one for damage hiding every
// frame; none for zeroed bytes). Cut frames of the newest segment give their seqs to the next
// appends. Recovery scans every segment first and writes that seq to LOST before it cuts
// anything; every Open reports it again (merged with its own findings) until the caller calls
// RecoveryHandled or the cursor passes it, so neither a crash during the cuts nor a caller
// failing before its rolled-back state is durable makes the loss vanish.
//
// What survives which crash:
//   - process crash (kill -9): everything appended, because the page cache survives (with
//     WriteBacklog: everything written, i.e. up to the last commit, the stubs of the
//     acknowledged frames written since, and no frame still in memory); acks up to the last ack frame written. An ack frame is written as soon as the cursor moves (one write
//     per burst of acks, by the background goroutine), its fsync waits for the group commit.
//   - power loss or kernel crash: everything up to the last successful group commit; frames
//     Append had returned but not yet made durable may be lost, and so may the acks of the last
//     commit interval: those frames are shipped again (bounded duplicates).
//   - corruption inside a segment (bit flip, zeroed page): only the frames it touches are lost,
//     counted in SpoolCorrupt and logged; the frames after it still ship. Data frames within a
//     segment are then no longer consecutive: that gap is the loss.
//
// # When full (MaxBytes)
//
// By default Append blocks while the segment files hold MaxBytes or more, until acks (and the
// caller's Checkpoint) let whole segments be deleted: the caller's own source is the buffer.
// With DropOldest (when_full: drop_oldest) Append never waits for room: it deletes the oldest
// sealed segments, acknowledged or not, until the spool is below MaxBytes (sealing the active
// segment first when it alone holds data), so the files exceed MaxBytes by one frame at most
// (plus a segment header and ack frames). Each such drop event is one log line (frames, bytes, segments, the
// seq range) and adds the unacknowledged frames to SpoolDropped and the segment bytes to
// SpoolDroppedBytes. The acknowledged cursor moves past every dropped seq, so AckedThrough,
// Pending and Stats stay right, Next skips them (a reader inside a dropped segment moves on),
// acks of dropped frames that Next had handed out are no-ops (a dropped frame that was in
// flight is counted as dropped even if its delivery then succeeds), and the next ack frame
// persists the move; a restart also takes the cursor from the oldest segment left. Replay
// returns only what is still on disk: dropping is loss by the operator's choice, not an
// error.
//
// Dropping overrides the Checkpoint gate (normally segments above the checkpoint are kept so
// that Replay can rebuild the caller's positions): after a crash the caller's saved positions
// may be older than the dropped data, so that data is read from its source again: duplicates,
// never loss of frames that were not dropped. A crash before the deletion reached the disk
// (directory fsync) likewise brings dropped frames back once: duplicates, not loss.
//
// # A bound shared by several spools (Budget)
//
// Options.Budget adds a bound on the bytes of several spools together (the global
// spool.max_bytes). A spool past its share of it behaves exactly as past MaxBytes: Append
// waits (for acks in any spool that share the budget), or with DropOldest drops its own
// oldest segments. Each spool keeps a reserve no other spool can take; see Budget.
package spool
