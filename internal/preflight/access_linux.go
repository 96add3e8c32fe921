package preflight

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// User is whose access check tests: the service user, with the groups the unit gives it.
type User struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
}

// spec is the user as commands take it (chown, setfacl): the name, else the number.
func (u User) spec() string {
	if u.Name != "" {
		return u.Name
	}
	return strconv.FormatUint(uint64(u.UID), 10)
}

func (u User) String() string {
	if u.Name != "" {
		return u.Name
	}
	return fmt.Sprintf("uid %d", u.UID)
}

// LookupUser finds the user named spec, or takes spec as UID[:GID] when it is numeric (a uid
// without a passwd entry gets GID = UID unless given). extraGroups (names or numbers) are
// added, as the unit's SupplementaryGroups= adds them to the service's groups.
func LookupUser(spec string, extraGroups ...string) (User, error) {
	var u User
	if uidText, gidText, ok := strings.Cut(spec, ":"); isNumber(uidText) {
		uid, _ := strconv.ParseUint(uidText, 10, 32)
		u = User{UID: uint32(uid), GID: uint32(uid)}
		if pw, err := user.LookupId(uidText); err == nil {
			u = fromPasswd(pw)
		}
		if ok {
			gid, err := strconv.ParseUint(gidText, 10, 32)
			if err != nil {
				return User{}, fmt.Errorf("user %q: group %q is not a number", spec, gidText)
			}
			u.GID = uint32(gid)
		}
	} else {
		pw, err := user.Lookup(spec)
		if err != nil {
			return User{}, fmt.Errorf("user %q: %w", spec, err)
		}
		u = fromPasswd(pw)
	}
	for _, g := range extraGroups {
		gid, err := lookupGroup(g)
		if err != nil {
			return User{}, err
		}
		u.Groups = append(u.Groups, gid)
	}
	return u, nil
}

// CurrentUser is the user check runs as, with its process groups.
func CurrentUser() User {
	u := User{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if pw, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
		u.Name = pw.Username
	}
	gs, _ := os.Getgroups()
	for _, g := range gs {
		u.Groups = append(u.Groups, uint32(g))
	}
	return u
}

func fromPasswd(pw *user.User) User {
	uid, _ := strconv.ParseUint(pw.Uid, 10, 32)
	gid, _ := strconv.ParseUint(pw.Gid, 10, 32)
	u := User{Name: pw.Username, UID: uint32(uid), GID: uint32(gid)}
	// systemd's User= applies the user's groups from /etc/group (initgroups).
	if ids, err := pw.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(g) != u.GID {
				u.Groups = append(u.Groups, uint32(g))
			}
		}
	}
	return u
}

func lookupGroup(g string) (uint32, error) {
	if isNumber(g) {
		n, _ := strconv.ParseUint(g, 10, 32)
		return uint32(n), nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", g, err)
	}
	n, _ := strconv.ParseUint(gr.Gid, 10, 32)
	return uint32(n), nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// probeKind is what a probe asks of a path.
type probeKind int

const (
	probeRead   probeKind = iota // open a file for reading
	probeList                    // open a directory for reading (list it)
	probeCreate                  // create (and remove) a file in a directory
)

type probeReq struct {
	path string
	kind probeKind
}

// probe answers each request as u would get it, and whether the answer is exact.
//
// As root, the requests run on an OS thread of their own whose file-system uid, gid and
// supplementary groups are u's (setfsuid, setfsgid and a per-thread setgroups): the kernel
// then decides each open as it will for the service, ACLs and all, because changing the
// fsuid from 0 drops root's file capabilities. That thread is never given back to the Go
// scheduler (the goroutine ends locked, so the runtime ends the thread), so no other
// goroutine ever runs with u's credentials. As u itself, the opens are plain. As anyone else,
// the kernel cannot be asked: the answer is an approximation from mode bits (search on every
// ancestor, then read or write), blind to ACLs, and said to be one.
func probe(u User, reqs []probeReq) (errs []error, exact bool) {
	switch {
	case uint32(os.Geteuid()) == u.UID && uint32(os.Getegid()) == u.GID:
		return openAll(reqs), true
	case os.Geteuid() == 0:
		type answer struct {
			errs []error
			err  error
		}
		done := make(chan answer, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: see above
			if err := becomeFS(u); err != nil {
				done <- answer{err: err}
				return
			}
			done <- answer{errs: openAll(reqs)}
		}()
		a := <-done
		if a.err == nil {
			return a.errs, true
		}
		// Could not switch (a kernel without the calls, a seccomp filter): approximate.
	}
	errs = make([]error, len(reqs))
	for i, r := range reqs {
		errs[i] = modeAccess(u, r)
	}
	return errs, false
}

// becomeFS gives the calling thread, alone, u's file-system identity.
func becomeFS(u User) error {
	groups := append([]uint32{u.GID}, u.Groups...)
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(u.GID), 0, 0)
	syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(u.UID), 0, 0)
	// Both calls return the previous id and no error: asking again with an invalid id returns
	// the current one, which tells whether the switch happened.
	cur, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0)
	if uint32(cur) != u.UID {
		return fmt.Errorf("setfsuid(%d) did not take", u.UID)
	}
	return nil
}

func openAll(reqs []probeReq) []error {
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		switch r.kind {
		case probeRead:
			// O_NONBLOCK: a FIFO matched by a pattern must not hang check.
			f, err := os.OpenFile(r.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				err = f.Close()
			}
			errs[i] = err
		case probeList:
			f, err := os.Open(r.path)
			if err == nil {
				_, err = f.Readdirnames(1)
				if errors.Is(err, io.EOF) { // an empty directory
					err = nil
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			errs[i] = err
		case probeCreate:
			f, err := os.CreateTemp(r.path, ".kinship-check-*")
			if err == nil {
				name := f.Name()
				err = f.Close()
				if rerr := os.Remove(name); err == nil {
					err = rerr
				}
			}
			errs[i] = err
		}
	}
	return errs
}

// modeAccess approximates the kernel's decision from mode bits.
func modeAccess(u User, r probeReq) error {
	path := filepath.Clean(r.path)
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if err := modeAllows(u, dir, 1); err != nil {
			return err
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	switch r.kind {
	case probeRead:
		return modeAllows(u, path, 4)
	case probeList:
		return modeAllows(u, path, 4|1)
	default:
		return modeAllows(u, path, 2|1)
	}
}

func modeAllows(u User, path string, want uint32) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if u.UID == 0 {
		return nil
	}
	perm := uint32(fi.Mode().Perm())
	var bits uint32
	switch {
	case st.Uid == u.UID:
		bits = perm >> 6
	case st.Gid == u.GID || containsGID(u.Groups, st.Gid):
		bits = perm >> 3
	default:
		bits = perm
	}
	if bits&want != want {
		return &fs.PathError{Op: "access", Path: path, Err: syscall.EACCES}
	}
	return nil
}

func containsGID(gs []uint32, g uint32) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}
