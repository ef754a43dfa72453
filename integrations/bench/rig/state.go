package rig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Snapshot fingerprints a directory tree: every entry's relative path,
// type, mode and (for regular files) content hash.
type Snapshot map[string]string

// TakeSnapshot fingerprints dir (a missing dir is an empty snapshot).
// Entries for which skip returns true are left out (nil: none).
func TakeSnapshot(t testing.TB, dir string, skip func(rel string) bool) Snapshot {
	t.Helper()
	s := Snapshot{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || (skip != nil && skip(rel)) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			v += " " + hex.EncodeToString(h[:8])
		}
		s[rel] = v
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", dir, err)
	}
	return s
}

// Diff lists what differs between two snapshots ("" when they are equal).
func (s Snapshot) Diff(after Snapshot) string {
	var out []string
	for k, v := range s {
		if w, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		} else if w != v {
			out = append(out, fmt.Sprintf("changed %s (%s → %s)", k, v, w))
		}
	}
	for k := range after {
		if _, ok := s[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// SkipLocks leaves out lock files (created empty on first use, never
// holding state) and temporary files of interrupted writes.
func SkipLocks(rel string) bool {
	base := filepath.Base(rel)
	return strings.HasSuffix(base, ".lock") || rel == "locks" || strings.Contains(base, ".tmp-")
}
