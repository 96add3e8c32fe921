// Package tailer finds log files by glob, watches them and hands their lines to a Sink, keyed
// by file identity (device + inode + a fingerprint of the first bytes) rather than by path.
//
// Concurrency: a Tailer is owned by the goroutine that calls Run. All state (open files, read
// offsets, held partial lines, multiline events, watches) lives on that goroutine, and the Sink
// is called only from it. The only other goroutine is fsnotify's reader, which talks to Run
// through channels.
//
// Watching: fsnotify is a hint, the file system is the truth. Only directories are watched
// (the base directory of every pattern, or its nearest existing ancestor, and every directory
// under it that a pattern can still match). Write events on a known path queue that file for
// reading; any other relevant event schedules a debounced rescan of all patterns, which is
// also what an inotify overflow triggers. A slow poll (Options.PollInterval) rescans and
// re-reads everything as a safety net; without fsnotify (or when a watch cannot be added) the
// poll runs every second. Idle means blocked in select: timers are armed only for the next
// real deadline.
//
// Rotation: a file that leaves its matching path (renamed or deleted) stays open and is read
// to its end; it is retired (Sink.Close) once it has been at EOF for a grace period (5 s)
// with no growth. The new file at the path is a new Source read from offset 0.
//
// A file is tracked only once it is non-empty, so that every Source has a fingerprint of at
// least one byte. A file that shrinks below the read offset (copytruncate) is read again from
// 0 under a new Source (the old one is closed), because its fingerprint no longer describes
// it. At start, files with stored positions that no longer sit at a matching path (rotated
// while the agent was stopped) are looked for in the watched directories and read to their end.
//
// Reading: one 256 KiB buffer for the whole Tailer; each file is read in chunks round-robin,
// lines are slices of that buffer, and a line that spans two chunks (or two wake-ups) is held
// in a small per-file buffer bounded by MaxLineBytes+1.
package tailer
