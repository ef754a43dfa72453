//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed config/xrootd.cfg.tmpl config/scitokens.cfg.tmpl
var configFS embed.FS

var configTemplates = template.Must(template.ParseFS(configFS, "config/*.tmpl"))

// XRootDConfig describes the XRootD server StartXRootD runs.
type XRootDConfig struct {
	// Issuer is the token issuer the SciTokens plugin trusts (https; its
	// CA must be in the system trust store). Required.
	Issuer string
	// IssuerName names the plugin's [Issuer NAME] section; default
	// "testbed".
	IssuerName string
	// Audience is what tokens must carry in aud; default the server's
	// https origin, https://127.0.0.1:HTTPPORT (the WLCG recommended
	// form). Several audiences: comma-separated.
	Audience string
	// BasePath is the exported path, and the path scopes are relative to;
	// default "/data".
	BasePath string
	// CertFile and KeyFile are the server's certificate (chain) and key,
	// PEM, for 127.0.0.1. They are copied where the xrootd user can read
	// them. Required.
	CertFile, KeyFile string
	// RootCAs verify the server's certificate when probing it; nil means
	// the system pool.
	RootCAs *x509.CertPool
	// CADir is xrd.tlsca's hashed CA directory; default /etc/ssl/certs.
	CADir string
	// User runs the server (-R); default "xrootd".
	User string
	// Binary is the xrootd executable; default "xrootd" from PATH.
	Binary string
	// Dirs are created under BasePath ("home/alice"), owned by User.
	Dirs []string
	// Files are created under BasePath (path → content), owned by User.
	Files map[string]string
	// StartTimeout bounds the wait for the ports; default 30 s.
	StartTimeout time.Duration
}

// XRootD is a running server.
type XRootD struct {
	// Host is the address clients use: 127.0.0.1.
	Host string
	// RootPort serves root:// and roots://; HTTPPort serves https://.
	RootPort, HTTPPort int
	// Audience and BasePath as configured.
	Audience, BasePath string
	// Dir is the server's private directory (owned by User).
	Dir string
	// LocalRoot is oss.localroot: BasePath lives at LocalRoot+BasePath.
	LocalRoot string
	// ConfigFile and SciTokensConfig are the rendered configuration.
	ConfigFile, SciTokensConfig string
	// Process is the running xrootd.
	Process *Process
}

// ConfigValues fill the configuration templates in config/.
type ConfigValues struct {
	// BasePath is exported and is the SciTokens base_path.
	BasePath string
	// LocalRoot is oss.localroot; AdminPath holds the admin socket and
	// the pid file.
	LocalRoot, AdminPath string
	// RootPort and HTTPPort are strings so the documentation can render
	// the templates with shell variables ("$ROOT_PORT").
	RootPort, HTTPPort string
	// CertFile, KeyFile: the host certificate and key; CADir: hashed CA
	// directory for xrd.tlsca.
	CertFile, KeyFile, CADir string
	// SciTokensConfig is the path of the plugin's configuration file.
	SciTokensConfig string
	// Audience, IssuerName, Issuer and User (default_user) go into the
	// plugin's configuration.
	Audience, IssuerName, Issuer, User string
}

// RenderConfig renders the xrootd and SciTokens configuration files.
func RenderConfig(d ConfigValues) (xrootdCfg, scitokensCfg string, err error) {
	var a, b bytes.Buffer
	if err := configTemplates.ExecuteTemplate(&a, "xrootd.cfg.tmpl", d); err != nil {
		return "", "", err
	}
	if err := configTemplates.ExecuteTemplate(&b, "scitokens.cfg.tmpl", d); err != nil {
		return "", "", err
	}
	return a.String(), b.String(), nil
}

// StartXRootD starts an XRootD server for the run and waits until both
// its ports answer. The run's Close stops it.
func StartXRootD(ctx context.Context, run *Run, cfg XRootDConfig) (*XRootD, error) {
	if cfg.Issuer == "" || cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("xrootd: Issuer, CertFile and KeyFile are required")
	}
	if cfg.IssuerName == "" {
		cfg.IssuerName = "testbed"
	}
	if cfg.BasePath == "" {
		cfg.BasePath = "/data"
	}
	cfg.BasePath = path.Clean("/" + cfg.BasePath)
	if cfg.CADir == "" {
		cfg.CADir = "/etc/ssl/certs"
	}
	if cfg.User == "" {
		cfg.User = "xrootd"
	}
	if cfg.Binary == "" {
		cfg.Binary = "xrootd"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	u, err := user.Lookup(cfg.User)
	if err != nil {
		return nil, fmt.Errorf("xrootd: no user %q (the Debian package xrootd-server creates it): %w", cfg.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	dir, err := run.Mkdir("xrootd")
	if err != nil {
		return nil, err
	}
	if err := reachable(filepath.Dir(dir), uid); err != nil {
		return nil, fmt.Errorf("xrootd runs as user %s and cannot reach its files: %w (point TMPDIR at a directory others may pass through, or unset it)", cfg.User, err)
	}
	x := &XRootD{Host: "127.0.0.1", BasePath: cfg.BasePath, Dir: dir, LocalRoot: filepath.Join(dir, "ns")}
	own := func(p string) error { return os.Lchown(p, uid, gid) }
	mkdir := func(p string) error {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		return own(p)
	}
	write := func(p string, data []byte, mode os.FileMode) error {
		if err := os.WriteFile(p, data, mode); err != nil {
			return err
		}
		return own(p)
	}
	if err := own(dir); err != nil {
		return nil, err
	}
	for _, d := range []string{"etc", "admin", "cache", "tmp", "home"} {
		if err := mkdir(filepath.Join(dir, d)); err != nil {
			return nil, err
		}
	}
	// The namespace, every level owned by the server's user.
	for _, d := range append([]string{""}, cfg.Dirs...) {
		if err := os.MkdirAll(x.LocalPath(d), 0o755); err != nil {
			return nil, err
		}
	}
	for name, content := range cfg.Files {
		p := x.LocalPath(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	if err := filepath.WalkDir(x.LocalRoot, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return own(p)
	}); err != nil {
		return nil, err
	}
	cert, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "etc", "hostcert.pem"), filepath.Join(dir, "etc", "hostkey.pem")
	if err := write(certFile, cert, 0o644); err != nil {
		return nil, err
	}
	if err := write(keyFile, key, 0o600); err != nil {
		return nil, err
	}
	x.ConfigFile = filepath.Join(dir, "etc", "xrootd.cfg")
	x.SciTokensConfig = filepath.Join(dir, "etc", "scitokens.cfg")

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if x.RootPort, err = freePort(ctx); err != nil {
			return nil, err
		}
		if x.HTTPPort, err = freePort(ctx); err != nil {
			return nil, err
		}
		x.Audience = cfg.Audience
		if x.Audience == "" {
			x.Audience = x.HTTPSOrigin()
		}
		xc, sc, err := RenderConfig(ConfigValues{
			BasePath: cfg.BasePath, LocalRoot: x.LocalRoot, AdminPath: filepath.Join(dir, "admin"),
			RootPort: strconv.Itoa(x.RootPort), HTTPPort: strconv.Itoa(x.HTTPPort),
			CertFile: certFile, KeyFile: keyFile, CADir: cfg.CADir,
			SciTokensConfig: x.SciTokensConfig,
			Audience:        x.Audience, IssuerName: cfg.IssuerName, Issuer: cfg.Issuer, User: cfg.User,
		})
		if err != nil {
			return nil, err
		}
		if err := write(x.ConfigFile, []byte(xc), 0o600); err != nil {
			return nil, err
		}
		if err := write(x.SciTokensConfig, []byte(sc), 0o600); err != nil {
			return nil, err
		}
		// Not exec.CommandContext: the server outlives ctx (which bounds
		// the start); run.Close stops its process group.
		cmd := exec.Command(cfg.Binary, "-R", cfg.User, "-c", x.ConfigFile) //nolint:noctx // stopped by run.Close, not by ctx
		cmd.Dir = dir
		cmd.Env = []string{
			"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=" + filepath.Join(dir, "home"),
			// scitokens-cpp caches issuer keys here; a private cache
			// never holds keys of an earlier test bed.
			"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
			"TMPDIR=" + filepath.Join(dir, "tmp"),
			"LANG=C",
		}
		p, err := run.Start("xrootd", cmd)
		if err != nil {
			return nil, err
		}
		x.Process = p
		lastErr = x.waitReady(ctx, cfg.RootCAs, cfg.StartTimeout)
		if lastErr == nil {
			return x, nil
		}
		_ = p.Stop(5 * time.Second)
		if !strings.Contains(p.Output(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

// waitReady probes the root port (TCP) and the https port (an HTTP
// request over verified TLS) until both answer, the process exits, or the
// timeout passes.
func (x *XRootD) waitReady(ctx context.Context, roots *x509.CertPool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Proxy:             nil,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	rootOK, httpOK := false, false
	var probeErr error
	delay := 20 * time.Millisecond
	for {
		if !rootOK {
			d := net.Dialer{Timeout: time.Second}
			if c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(x.Host, strconv.Itoa(x.RootPort))); err == nil {
				_ = c.Close()
				rootOK = true
			} else {
				probeErr = err
			}
		}
		if rootOK && !httpOK {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, x.HTTPSOrigin()+"/", nil)
			if resp, err := client.Do(req); err == nil {
				_ = resp.Body.Close()
				httpOK = true
			} else {
				probeErr = err
			}
		}
		if rootOK && httpOK {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-x.Process.Exited():
			t.Stop()
			return fmt.Errorf("%s before it was ready; its output:\n%s", describe(x.Process), lastLines(x.Process.Output(), 30))
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("xrootd (pid %d) not ready after %v (root port %d answered: %v; last probe: %v); its output:\n%s",
				x.Process.PID(), timeout, x.RootPort, rootOK, probeErr, lastLines(x.Process.Output(), 30))
		case <-t.C:
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// HTTPSOrigin is https://127.0.0.1:HTTPPORT.
func (x *XRootD) HTTPSOrigin() string {
	return "https://" + net.JoinHostPort(x.Host, strconv.Itoa(x.HTTPPort))
}

// nsPath is the namespace path of p, a path relative to BasePath.
func (x *XRootD) nsPath(p string) string { return path.Join(x.BasePath, "/"+p) }

// URL returns the URL of p (relative to BasePath) for scheme root, roots,
// https or davs.
func (x *XRootD) URL(scheme, p string) string {
	switch scheme {
	case "root", "roots":
		// xroot URLs: the path after the host starts with a second slash.
		return scheme + "://" + net.JoinHostPort(x.Host, strconv.Itoa(x.RootPort)) + "/" + x.nsPath(p)
	case "https", "davs":
		return scheme + "://" + net.JoinHostPort(x.Host, strconv.Itoa(x.HTTPPort)) + x.nsPath(p)
	}
	panic("xrootd: unknown scheme " + scheme)
}

// LocalPath is where p (relative to BasePath) is stored on disk.
func (x *XRootD) LocalPath(p string) string {
	return filepath.Join(x.LocalRoot, filepath.FromSlash(x.nsPath(p)))
}

// reachable checks that user uid may pass through dir and each of its
// parents (search permission for owner or others; groups are not
// considered, so a false alarm is possible only with group-only access).
func reachable(dir string, uid int) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		owner, ok := ownerUID(fi)
		ownerMay := ok && owner == uid && fi.Mode().Perm()&0o100 != 0
		if !ownerMay && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s has mode %v", d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// ownerUID returns the owner of a file.
func ownerUID(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
