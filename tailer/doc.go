// Package tailer finds log files by glob, watches them and hands their lines to a Sink, keyed
// by file identity (device + inode + a fingerprint of the first bytes) rather than by path.
//
// Concurrency: a Tailer is owned by the goroutine that calls Run. All state (open files, read
// offsets, held partial lines, multiline events, watches) lives on that goroutine, and the Sink
// is called only from it; a BatchSink gets the complete lines of each chunk read (up to
// 256 KiB) in one call. The only other goroutine is fsnotify's reader, which talks to Run
// through channels.
//
// Watching: fsnotify is a hint, the file system is the truth. Only directories are watched
// (the base directory of every pattern, or its nearest existing ancestor, and every directory
// under it that a pattern can still match), each before it is listed, so that nothing renamed
// after the listing goes unseen. A file reachable by two paths is one file (identity is device
// and inode) and is read once. Write events on a known path queue that file for
// reading; any other relevant event schedules a debounced rescan of all patterns, which is
// also what an inotify overflow triggers. A slow poll (Options.PollInterval) is the safety
// net: a full sweep rescans and stats every file; while fsnotify serves every directory on a
// local file system and no directory's modification time changed, a poll is only one stat per
// directory, and the full sweep runs every 6 intervals (a stat per file every 10 s would be
// most of the CPU of 10,000 idle files). A sweep re-reads only files whose size or
// modification time changed. Without fsnotify (or when a watch cannot be added) the poll runs
// every second and always sweeps; so does every poll while a watched directory is on NFS, SMB,
// FUSE or a similar file system, or while a file cannot be opened. Idle means blocked in
// select: timers are armed only for the next real deadline.
//
// Pacing: while writes come fast (the queue has had files again less than 10/6 ms after
// the start of the last passes, on average: ~600 writes/s), a read pass (reading the queued
// files until none has more) starts at most every 10 ms, with fsnotify's events left in the
// kernel meanwhile, which merges a file's repeated modify events: a logger writing each line
// with its own write(2) costs a wake-up per pace instead of one per line. Slower writes are
// read at once (a paced pass costs wake-ups of its own, which only pay from about 6 writes a
// pace). The pass takes every event waiting, so events of many files (which the kernel
// cannot merge) never overflow its queue.
//
// Rotation: a file that leaves its matching path (renamed or deleted) stays open and is read
// to its end; it is retired (Sink.Close) once it has been at EOF for a grace period (5 s)
// with no growth. The new file at the path is a new Source read from offset 0. A file at EOF
// for Options.CloseInactive gives its descriptor back; the next write reopens it (same
// identity, checked by inode and fingerprint).
//
// A file is tracked only once it is non-empty, so that every Source has a fingerprint of at
// least one byte. A file that shrinks below the read offset (copytruncate) is read again from
// 0 under a new Source (the old one is closed), because its fingerprint no longer describes
// it. First, what had not been read yet is read from the copy copytruncate left next to it
// (a regular, uncompressed file in the same directory, at least as long as the read offset,
// whose first bytes hash like the content the Source read from 0), under the old Source, and
// only once: the copy is not tracked. Without such a copy those lines are lost. The same
// happens at start when a stored position is past the end of its file, or no longer matches
// its first bytes, and such a copy is there (copytruncate ran while the agent was stopped).
// At start, files with stored positions that no longer sit at a matching path (rotated
// while the agent was stopped) are looked for in the watched directories and read to their end.
// A file a walk saw but that was renamed away before it could be opened is looked for in its
// directory by inode and read to its end too.
//
// Symbolic links: a pattern's fixed part (before its first wildcard) is what the operator
// wrote, and links there are followed (/var/log/app on a data volume). Below it, entries were
// found by wildcards, and whoever can write those directories could plant them: a link to
// /var/log/auth.log, which the agent (group adm) can read and that user cannot, or to / under
// "**". They are not followed unless Options.FollowSymlinks; each is logged once and counted
// (kinship_files_skipped_total{reason="symlink"}). Against a link swapped in after the walk,
// a file is opened with O_NOFOLLOW, must have the inode the walk saw, and must really be (per
// /proc/self/fd) in a directory the walk listed without following a link. With
// FollowSymlinks, linked directories are walked: files in them are known by their path under
// the link, their target is watched at its real path and events there are mapped back to the
// link; each directory is walked once per pattern, by device and inode, so a link to an
// ancestor ends the descent. Options.ExcludeDirs (the agent's state directory) are never
// read, whatever a pattern or a link says: recognised by real path and by device and inode.
//
// Failures that are not departures: a directory that exists but cannot be stated or listed
// (permissions changed for a moment, EIO, ESTALE, EMFILE) leaves its files as they are
// (descriptor, offset, stored position) until a listing succeeds; it is logged once. A file
// that was retired and comes back at a matching path is recognised by device, inode,
// fingerprint and tail print and goes on from where it ended.
//
// Descriptors: at most Options.MaxOpenFiles (from RLIMIT_NOFILE by default, with a margin for
// the rest of the process) are held. Beyond that, the least recently read file is closed,
// idle ones first, and reopened by path in its turn, its device, inode, fingerprint and tail
// print checked before reading on from its offset (fdcap.go). EMFILE lowers the cap and is
// logged once, then every 10 minutes while it lasts.
//
// Rewrites: the fingerprint of the first bytes does not change when a file is truncated and
// written past the offset again with the same first KiB. A hash of the bytes just before the
// offset (the tail print, tailprint.go, also stored with positions) catches most of these.
//
// Quiet failures made loud: a pattern matching nothing is logged once, and again when that
// changes; files of size 0 on procfs or sysfs are said once (per directory) not to be tailed.
//
// Reading: one 256 KiB buffer for the whole Tailer; each file is read in chunks round-robin,
// lines are slices of that buffer, and a line that spans two chunks (or two wake-ups) is held
// in a small per-file buffer bounded by MaxLineBytes+1. A held line that has not grown for
// Options.PartialLineTimeout is handed over as it is, with its end after its bytes: if the
// writer continues it later, the continuation is a line of its own and nothing is sent twice.
package tailer
