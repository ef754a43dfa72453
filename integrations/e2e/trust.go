//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// caPrefix starts the name of every CA file the harness installs:
// tokenhelper-e2e-PID-START-NAME.crt, PID and START naming the process
// that installed it (see processStart), so a later run can tell a CA left
// by a killed run from one in use.
const caPrefix = "tokenhelper-e2e-"

// TrustStore is the Debian system trust store: CA files in LocalDir are
// added to the bundle and the hashed directory CertsDir by
// update-ca-certificates. The harness adds the test bed's CA there because
// scitokens-cpp (which XRootD's SciTokens plugin uses to fetch the
// issuer's metadata and keys) trusts the system store and nothing else.
type TrustStore struct {
	// LocalDir holds administrator CAs (/usr/local/share/ca-certificates).
	LocalDir string
	// CertsDir is the hashed certificate directory (/etc/ssl/certs).
	CertsDir string
	// Bundle is the PEM bundle update-ca-certificates writes
	// (/etc/ssl/certs/ca-certificates.crt).
	Bundle string
	// Update is the update-ca-certificates command.
	Update string
	// LockFile serializes changes between concurrent runs.
	LockFile string
}

// SystemTrustStore is the machine's Debian trust store.
func SystemTrustStore() TrustStore {
	return TrustStore{
		LocalDir: "/usr/local/share/ca-certificates",
		CertsDir: "/etc/ssl/certs",
		Bundle:   "/etc/ssl/certs/ca-certificates.crt",
		Update:   "update-ca-certificates",
		LockFile: filepath.Join(os.TempDir(), "tokenhelper-e2e-truststore.lock"),
	}
}

// Install adds the PEM certificate to the trust store as a file named
// after this process and name, and returns that file's path. Remove it with
// Remove.
func (s TrustStore) Install(name string, certPEM []byte) (string, error) {
	if block, _ := pem.Decode(certPEM); block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("trust store: not a PEM certificate")
	}
	path, err := s.FileName(name)
	if err != nil {
		return "", err
	}
	unlock, err := s.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := os.MkdirAll(s.LocalDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, certPEM, 0o644); err != nil {
		return "", err
	}
	if err := s.update(); err != nil {
		_ = os.Remove(path)
		s.removeLinks(path)
		_ = s.update() // best effort: the install already failed
		return "", err
	}
	return path, nil
}

// FileName is the path Install uses for name: in LocalDir, named after
// this process so that RecoverStale can tell when it is stale. A script
// that installs a CA itself should be given this path.
func (s TrustStore) FileName(name string) (string, error) {
	start, err := processStart(os.Getpid())
	if err != nil {
		return "", err
	}
	return filepath.Join(s.LocalDir, fmt.Sprintf("%s%d-%d-%s.crt", caPrefix, os.Getpid(), start, name)), nil
}

// Remove takes a CA file installed by Install out of the trust store: the
// file, the links update-ca-certificates made for it in CertsDir (it
// leaves them behind for local CAs), and its entry in the bundle. A path
// that is already gone is not an error.
func (s TrustStore) Remove(path string) error {
	if filepath.Dir(path) != filepath.Clean(s.LocalDir) || !strings.HasPrefix(filepath.Base(path), caPrefix) {
		return fmt.Errorf("trust store: %s is not a CA file of this harness", path)
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	err = os.Remove(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	links := s.removeLinks(path)
	if err == nil || links > 0 {
		return s.update()
	}
	return nil
}

// removeLinks removes CertsDir/NAME.pem (a link to the CA file) and the
// hash links (HASH.0) that point to it; it returns how many it removed.
func (s TrustStore) removeLinks(path string) int {
	pemName := strings.TrimSuffix(filepath.Base(path), ".crt") + ".pem"
	n := 0
	entries, _ := os.ReadDir(s.CertsDir)
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		link := filepath.Join(s.CertsDir, e.Name())
		target, err := os.Readlink(link)
		if err != nil {
			continue
		}
		if e.Name() == pemName || target == pemName || target == filepath.Join(s.CertsDir, pemName) {
			if os.Remove(link) == nil {
				n++
			}
		}
	}
	return n
}

// Contains reports whether the bundle holds the certificate.
func (s TrustStore) Contains(certPEM []byte) (bool, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false, errors.New("trust store: not a PEM certificate")
	}
	bundle, err := os.ReadFile(s.Bundle)
	if err != nil {
		return false, err
	}
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false, nil
		}
		if bytes.Equal(b.Bytes, block.Bytes) {
			return true, nil
		}
	}
}

// Installed lists the CA files of this harness in LocalDir, with the pid
// and start time of the process that installed each.
func (s TrustStore) Installed() ([]InstalledCA, error) {
	entries, err := os.ReadDir(s.LocalDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []InstalledCA
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, caPrefix) || !strings.HasSuffix(name, ".crt") {
			continue
		}
		ca := InstalledCA{Path: filepath.Join(s.LocalDir, name)}
		f := strings.SplitN(strings.TrimPrefix(name, caPrefix), "-", 3)
		if len(f) == 3 {
			ca.PID, _ = strconv.Atoi(f[0])
			ca.Start, _ = strconv.ParseUint(f[1], 10, 64)
		}
		out = append(out, ca)
	}
	return out, nil
}

// InstalledCA is a CA file of this harness found in the trust store.
type InstalledCA struct {
	Path  string
	PID   int
	Start uint64
}

// Stale reports whether the process that installed the CA is gone (a
// name that does not parse counts as stale).
func (c InstalledCA) Stale() bool { return c.PID <= 0 || !alive(c.PID, c.Start) }

// update runs update-ca-certificates with no hooks: the hooks (the Java
// keystore) are slow and never see our temporary CA, so skipping them both
// when adding and when removing leaves them exactly as they were.
func (s TrustStore) update() error {
	nohooks, err := os.MkdirTemp("", "tokenhelper-e2e-nohooks-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(nohooks) }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Update, "--hooksdir", nohooks)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", s.Update, err, bytes.TrimSpace(out))
	}
	return nil
}

// lock takes an exclusive lock on LockFile (released by the returned
// function, or by the kernel when the process dies).
func (s TrustStore) lock() (func(), error) {
	f, err := os.OpenFile(s.LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
