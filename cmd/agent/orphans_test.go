package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinship-agent/kinship/spool"
)

// kinship status lists a removed flow's spool that still holds records, outside the global
// bound, with what to do about it.
func TestStatusShowsOrphanedSpool(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(state, "flows", "old", "spool")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Append(context.Background(), []byte("never shipped")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kinship.yaml")
	body := fmt.Sprintf("state_dir: %s\nspool: {max_bytes: 1GiB}\nflows:\n  - {name: app, paths: [%q], discard: {}}\n", state, dir+"/*.log")
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := runMain([]string{"status", "--config", cfgPath}, &out, &errOut); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"global bound 1.0 GiB", "removed flows keep", "old"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
