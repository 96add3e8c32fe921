package preflight

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/kinship-agent/kinship/config"
)

// matched is what the patterns find now, counted as the agent will hold it: descriptors per
// flow (each flow's tailer opens its files) and watched directories per flow (each flow has
// its own inotify instance).
type matched struct {
	files int // matched files, summed over flows
	dirs  int // directories a flow's tailer watches, summed over flows
}

func checkFiles(r *Report, cfg *config.Config, u User, unit unitInfo) matched {
	var m matched
	type patternFiles struct {
		flow, pattern string
		files, dirs   []string
	}
	var pats []patternFiles
	var reqs []probeReq
	for _, f := range cfg.Flows {
		flowFiles := map[string]bool{}
		flowDirs := map[string]bool{}
		for _, p := range f.Paths {
			pf := patternFiles{flow: f.Name, pattern: p}
			found, _ := doublestar.FilepathGlob(p, doublestar.WithFilesOnly())
			dirs := map[string]bool{}
			for _, path := range found {
				if excluded(f.Exclude, path) {
					continue
				}
				pf.files = append(pf.files, path)
				flowFiles[path] = true
				dirs[filepath.Dir(path)] = true
			}
			for d := range dirs {
				pf.dirs = append(pf.dirs, d)
			}
			sort.Strings(pf.dirs)
			for _, path := range pf.files {
				reqs = append(reqs, probeReq{path, probeRead})
			}
			for _, d := range pf.dirs {
				reqs = append(reqs, probeReq{d, probeList})
			}
			pats = append(pats, pf)
			for d := range watchedDirs(p, pf.files) {
				flowDirs[d] = true
			}
		}
		m.files += len(flowFiles)
		m.dirs += len(flowDirs)
	}
	errs, exact := probe(u, reqs)
	how := "opened as " + u.String()
	if !exact {
		how = "judged from mode bits for " + u.String() + " (run check as root for the kernel's own answer)"
	}
	i := 0
	for _, pf := range pats {
		subject := fmt.Sprintf("%s (flow %s)", pf.pattern, pf.flow)
		if unit.found && unit.privateTmp && (under(pf.pattern, "/tmp") || under(pf.pattern, "/var/tmp")) {
			r.add(Fail, "files", subject, "the unit has PrivateTmp=yes: the service sees its own empty /tmp and /var/tmp",
				"write the logs elsewhere, or add PrivateTmp=no in a drop-in (systemctl edit kinship)")
		}
		if len(pf.files) == 0 {
			r.add(Fail, "files", subject, "matches no file now",
				"check the path and the exclude patterns (this turns ok once a matching file exists)")
			continue
		}
		var unreadable, unlistable []string
		for range pf.files {
			if errs[i] != nil {
				unreadable = append(unreadable, reqs[i].path)
			}
			i++
		}
		for range pf.dirs {
			if errs[i] != nil {
				unlistable = append(unlistable, reqs[i].path)
			}
			i++
		}
		if len(unreadable) > 0 {
			r.add(Fail, "files", subject, fmt.Sprintf("%d of %d files not readable by %s (%s): %s", len(unreadable), len(pf.files), u, how, sample(unreadable)),
				fmt.Sprintf("make them readable by %s: group-readable by a group it is in (adm on Debian; SupplementaryGroups= in a drop-in), or setfacl -m u:%s:r, and set the same mode in the application's or logrotate's create line", u, u.spec()))
		}
		if len(unlistable) > 0 {
			r.add(Fail, "files", subject, fmt.Sprintf("%s cannot list %s: files created there later will not be found", u, sample(unlistable)),
				fmt.Sprintf("give %s read and search permission on the directory (chmod g+rx with a group it is in, or setfacl -m u:%s:rx)", u, u.spec()))
		}
		if len(unreadable) == 0 && len(unlistable) == 0 {
			r.add(OK, "files", subject, fmt.Sprintf("%d files in %d directories, all readable (%s)", len(pf.files), len(pf.dirs), how), "")
		}
	}
	return m
}

// excluded matches the tailer's rule: an exclude pattern matches the whole path or the base name.
func excluded(exclude []string, path string) bool {
	for _, e := range exclude {
		if ok, _ := doublestar.PathMatch(e, path); ok {
			return true
		}
		if ok, _ := doublestar.Match(e, filepath.Base(path)); ok {
			return true
		}
	}
	return false
}

// watchedDirs estimates the directories the tailer watches for pattern: its base directory,
// every directory between it and a matched file, and with ** every directory below the base
// (each is a place a matching file may appear).
func watchedDirs(pattern string, files []string) map[string]bool {
	base, rest := doublestar.SplitPattern(filepath.ToSlash(pattern))
	// A base that does not exist yet is watched through its nearest existing ancestor.
	for {
		if _, err := os.Stat(base); err == nil || filepath.Dir(base) == base {
			break
		}
		base = filepath.Dir(base)
	}
	dirs := map[string]bool{base: true}
	if strings.Contains(rest, "**") {
		_ = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				dirs[path] = true
			}
			return nil
		})
		return dirs
	}
	for _, f := range files {
		for d := filepath.Dir(f); under(d, base) && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	return dirs
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// sample names up to three paths, and how many more.
func sample(paths []string) string {
	if len(paths) <= 3 {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:3], ", "), len(paths)-3)
}
