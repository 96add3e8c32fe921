package preflight

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/kinship-agent/kinship/config"
)

// System says where the host's limits and kinship's unit are read; empty fields take the
// real places.
type System struct {
	InotifyDir string   // /proc/sys/fs/inotify
	UnitDirs   []string // unit directories by precedence: /etc/systemd/system, /run/systemd/system, /usr/lib/systemd/system, /lib/systemd/system
	SystemConf string   // /etc/systemd/system.conf, for DefaultLimitNOFILE
}

const unitName = "kinship.service"

func (s System) inotifyDir() string {
	if s.InotifyDir != "" {
		return s.InotifyDir
	}
	return "/proc/sys/fs/inotify"
}

func (s System) unitDirs() []string {
	if s.UnitDirs != nil {
		return s.UnitDirs
	}
	return []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
}

func (s System) systemConf() string {
	if s.SystemConf != "" {
		return s.SystemConf
	}
	return "/etc/systemd/system.conf"
}

// unitInfo is what check needs of kinship.service, drop-ins applied.
type unitInfo struct {
	found          bool
	files          []string // the unit and its drop-ins, in the order applied
	user           string
	groups         []string // SupplementaryGroups=
	privateTmp     bool
	protectStrict  bool
	readWritePaths []string
	stateDirs      []string // StateDirectory=, relative to /var/lib
	nofileSoft     uint64
	nofileHard     uint64
	nofileSet      bool
}

// loadUnit reads kinship.service as systemd would: the unit from the directory with the
// highest precedence, then every drop-in (kinship.service.d/*.conf) sorted by file name, a
// name in a higher-precedence directory hiding the same name below. It understands only the
// settings check uses.
func loadUnit(s System) unitInfo {
	var u unitInfo
	dirs := s.unitDirs()
	for _, d := range dirs {
		p := filepath.Join(d, unitName)
		if _, err := os.Stat(p); err == nil {
			u.files = append(u.files, p)
			break
		}
	}
	if len(u.files) == 0 {
		return u
	}
	u.found = true
	dropins := map[string]string{}
	for i := len(dirs) - 1; i >= 0; i-- {
		matches, _ := filepath.Glob(filepath.Join(dirs[i], unitName+".d", "*.conf"))
		for _, m := range matches {
			dropins[filepath.Base(m)] = m
		}
	}
	names := make([]string, 0, len(dropins))
	for n := range dropins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u.files = append(u.files, dropins[n])
	}
	for _, f := range u.files {
		u.apply(f)
	}
	return u
}

func (u *unitInfo) apply(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.Trim(line, "[]")
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section != "Service" {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "User":
			u.user = value
		case "SupplementaryGroups":
			u.groups = appendList(u.groups, value)
		case "PrivateTmp":
			u.privateTmp = yes(value)
		case "ProtectSystem":
			u.protectStrict = value == "strict"
		case "ReadWritePaths":
			u.readWritePaths = appendList(u.readWritePaths, value)
		case "StateDirectory":
			u.stateDirs = appendList(u.stateDirs, value)
		case "LimitNOFILE":
			if soft, hard, ok := parseLimit(value); ok {
				u.nofileSoft, u.nofileHard, u.nofileSet = soft, hard, true
			}
		}
	}
}

// appendList follows systemd's list settings: each assignment adds, an empty one resets.
func appendList(list []string, value string) []string {
	if value == "" {
		return nil
	}
	for _, v := range strings.Fields(value) {
		list = append(list, strings.TrimLeft(v, "-+"))
	}
	return list
}

func yes(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// parseLimit reads a systemd resource limit: "N", "SOFT:HARD" or "infinity".
func parseLimit(v string) (soft, hard uint64, ok bool) {
	one := func(s string) (uint64, bool) {
		if s == "infinity" {
			return ^uint64(0), true
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil
	}
	a, b, two := strings.Cut(v, ":")
	if soft, ok = one(a); !ok {
		return 0, 0, false
	}
	if !two {
		return soft, soft, true
	}
	hard, ok = one(b)
	return soft, hard, ok
}

// defaultNOFILE is systemd's DefaultLimitNOFILE since version 240 (1024:524288); a
// DefaultLimitNOFILE= in system.conf replaces it.
func defaultNOFILE(s System) (hard uint64, from string) {
	hard, from = 524288, "systemd's default 1024:524288"
	f, err := os.Open(s.systemConf())
	if err != nil {
		return hard, from
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && k == "DefaultLimitNOFILE" {
			if _, h, ok := parseLimit(v); ok {
				hard, from = h, "DefaultLimitNOFILE="+v+" in "+s.systemConf()
			}
		}
	}
	return hard, from
}

// fsNames names the file systems state directories live on (statfs f_type).
var fsNames = map[int64]string{
	0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs", 0x794c7630: "overlay",
	0x6969: "nfs", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x65735546: "fuse", 0x2FC12FC1: "zfs",
	0x858458f6: "ramfs", 0x5346544e: "ntfs", 0x4d44: "vfat", 0xf2f52010: "f2fs", 0x3153464a: "jfs",
	0x52654973: "reiserfs", 0x73717368: "squashfs", 0x9fa0: "proc", 0x62656572: "sysfs",
}

func fsName(t int64) string {
	if n, ok := fsNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type 0x%x", t)
}

// networkFS are file systems whose fsync and locking a spool should not rely on.
var networkFS = map[string]bool{"nfs": true, "cifs": true, "smb2": true, "fuse": true}

func checkStateDir(r *Report, cfg *config.Config, u User, unit unitInfo) {
	dir := cfg.StateDir
	byUnit := false
	for _, s := range unit.stateDirs {
		if under(dir, filepath.Join("/var/lib", s)) {
			byUnit = true
		}
	}
	if unit.found && unit.protectStrict && !byUnit {
		writable := false
		for _, p := range unit.readWritePaths {
			if under(dir, p) {
				writable = true
			}
		}
		if !writable {
			r.add(Fail, "state_dir", dir, "the unit's ProtectSystem=strict makes it read-only for the service",
				fmt.Sprintf("add ReadWritePaths=%s in a drop-in (systemctl edit kinship), or use the default state_dir %s", dir, config.DefaultStateDir))
		}
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err) && byUnit:
		r.add(OK, "state_dir", dir, "does not exist yet: systemd creates it for the service at start (StateDirectory=)", "")
		return
	case err != nil:
		r.add(Fail, "state_dir", dir, oneLine(err), fmt.Sprintf("create it owned by %s: install -d -o %s -m 0700 %s", u, u.spec(), dir))
		return
	case !fi.IsDir():
		r.add(Fail, "state_dir", dir, "is not a directory", "point state_dir at a directory")
		return
	}
	errs, exact := probe(u, []probeReq{{dir, probeCreate}})
	how := "created a file as " + u.String()
	if !exact {
		how = "judged from mode bits for " + u.String()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		r.add(Fail, "state_dir", dir, "statfs: "+oneLine(err), "")
		return
	}
	kind := fsName(int64(st.Type))
	free := st.Bavail * uint64(st.Bsize)
	where := fmt.Sprintf("on %s, %s free", kind, bytesText(free))
	switch {
	case st.Flags&0x1 != 0: // ST_RDONLY
		r.add(Fail, "state_dir", dir, "read-only file system ("+where+")", "put state_dir on a writable file system")
		return
	case errs[0] != nil:
		r.add(Fail, "state_dir", dir, fmt.Sprintf("not writable by %s (%s: %s; %s)", u, how, oneLine(errs[0]), where),
			fmt.Sprintf("chown -R %s %s (the unit's StateDirectory= does this for /var/lib/kinship)", u.spec(), dir))
		return
	}
	spool := int64(cfg.Spool.MaxBytes)
	if spool == 0 {
		for _, f := range cfg.Flows {
			spool += int64(f.Spool.MaxBytes)
		}
	}
	msg := fmt.Sprintf("writable by %s (%s), %s; spools may take up to %s", u, how, where, bytesText(uint64(spool)))
	switch {
	case kind == "tmpfs" || kind == "ramfs":
		r.add(Warn, "state_dir", dir, msg+"; positions and spool on "+kind+" are lost at reboot, so files are read again from start_at",
			"put state_dir on a disk")
	case networkFS[kind]:
		r.add(Warn, "state_dir", dir, msg+"; a network file system's fsync and rename may not be durable",
			"put state_dir on a local disk")
	case uint64(spool) > free:
		r.add(Warn, "state_dir", dir, msg+", more than is free: a long outage fills the disk before the spool bound",
			"free space, or lower spool.max_bytes (global or per flow)")
	default:
		r.add(OK, "state_dir", dir, msg, "")
	}
}

func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// checkInotify compares the directories the flows will watch with the per-user limits. Past
// a limit the tailer does not fail: it polls the directories it could not watch every second.
func checkInotify(r *Report, cfg *config.Config, m matched, s System) {
	watches, err1 := readUint(filepath.Join(s.inotifyDir(), "max_user_watches"))
	instances, err2 := readUint(filepath.Join(s.inotifyDir(), "max_user_instances"))
	if err1 != nil || err2 != nil {
		r.add(Warn, "inotify", "", "cannot read the limits: "+oneLine(firstErr(err1, err2)), "the tailer polls where it cannot watch")
		return
	}
	msg := fmt.Sprintf("%d directories to watch in %d flows; limits per user: max_user_watches %d, max_user_instances %d",
		m.dirs, len(cfg.Flows), watches, instances)
	switch {
	case uint64(m.dirs) > watches:
		r.add(Warn, "inotify", "", msg+": the directories past the limit are polled every second instead of watched",
			fmt.Sprintf("raise it: echo fs.inotify.max_user_watches=%d > /etc/sysctl.d/60-kinship.conf && sysctl --system", 2*m.dirs))
	case uint64(len(cfg.Flows)) > instances:
		r.add(Warn, "inotify", "", msg+": flows past the limit poll every second instead of watching",
			fmt.Sprintf("raise it: echo fs.inotify.max_user_instances=%d > /etc/sysctl.d/60-kinship.conf && sysctl --system", 2*len(cfg.Flows)))
	default:
		r.add(OK, "inotify", "", msg, "")
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Descriptors the agent holds besides the files it reads: per flow its inotify instance,
// spool segments, positions and directory handles; per process the metrics listener, AWS
// connections, the journal and Go's own.
const (
	fdsPerFlow    = 8
	fdsPerProcess = 64
)

// checkOpenFiles compares the descriptors the agent needs for the files matched now with
// the limit the service will run with. Go raises the soft RLIMIT_NOFILE to the hard one at
// start, so the hard limit is the one that counts: the unit's LimitNOFILE=, else systemd's
// DefaultLimitNOFILE.
func checkOpenFiles(r *Report, cfg *config.Config, m matched, unit unitInfo, s System) {
	need := uint64(m.files + len(cfg.Flows)*fdsPerFlow + fdsPerProcess)
	var own syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own)
	limit, from := own.Max, "this shell's hard RLIMIT_NOFILE (for kinship run started by hand)"
	if unit.found {
		if unit.nofileSet {
			limit, from = unit.nofileHard, "the unit's LimitNOFILE"
		} else {
			limit, from = defaultNOFILE(s)
		}
	}
	msg := fmt.Sprintf("about %d descriptors needed (%d files matched now, %d flows); limit %s from %s",
		need, m.files, len(cfg.Flows), limitText(limit), from)
	if unit.found {
		msg += fmt.Sprintf(" (this shell's, for kinship run started by hand: %s)", limitText(own.Max))
	}
	fix := fmt.Sprintf("raise it: LimitNOFILE=%d in a drop-in (systemctl edit kinship), or match fewer files (exclude, close_inactive)", 2*need)
	switch {
	case need > limit:
		r.add(Fail, "open_files", "", msg+": files past the limit cannot be opened", fix)
	case need > limit/10*8:
		r.add(Warn, "open_files", "", msg+": above 80% of the limit", fix)
	default:
		r.add(OK, "open_files", "", msg, "")
	}
}

func limitText(n uint64) string {
	if n == ^uint64(0) {
		return "infinity"
	}
	return strconv.FormatUint(n, 10)
}
