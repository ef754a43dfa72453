package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

const usage = `tokenhelper-testbed: a loopback INDIGO-IAM-like identity provider and WLCG storage

Usage:
  tokenhelper-testbed serve [--https] [--addr 127.0.0.1:0] [--storage-addr 127.0.0.1:0]
                            [--no-storage] [--dir DIR] [--lifetime access=20m,refresh=720h,device=10m,interval=5s]
                            [--verbose]
  tokenhelper-testbed approve CODE --user alice [--dir DIR]
  tokenhelper-testbed approve --next --user alice [--wait 30s] [--dir DIR]
  tokenhelper-testbed deny CODE [--dir DIR]
  tokenhelper-testbed advance DURATION [--dir DIR]

serve runs until interrupted (Ctrl-C, SIGTERM) and prints the issuer URL, the
storage URL, the CA file, the users' passwords and a tokenhelper profile.
The other commands talk to a running test bed through its admin API; DIR
(default: $XDG_STATE_HOME/tokenhelper-testbed) tells them where it is.
`

// env looks up an environment variable (os.Getenv, or a map in tests).
type env func(string) string

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return helper.KindUsage.ExitCode()
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr, getenv)
	case "approve":
		err = approve(ctx, args[1:], stdout, stderr, getenv, true)
	case "deny":
		err = approve(ctx, args[1:], stdout, stderr, getenv, false)
	case "advance":
		err = advance(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprint(stderr, usage)
		err = helper.Errorf(helper.KindUsage, "unknown command %q", args[0]).WithFix("use serve, approve, deny or advance")
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tokenhelper-testbed: %v\n", err)
		return helper.ExitCode(err)
	}
	return 0
}

// defaultDir is where serve keeps its CA and keys between runs, so a CA
// installed in a trust store stays valid.
func defaultDir(getenv env) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tokenhelper-testbed")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "tokenhelper-testbed")
	}
	return ""
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tokenhelper-testbed "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, helper.Wrap(helper.KindUsage, err, err.Error())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func resolveDir(dir string, getenv env) (string, error) {
	if dir == "" {
		dir = defaultDir(getenv)
	}
	if dir == "" {
		return "", helper.Errorf(helper.KindUsage, "no directory for the test bed").WithFix("pass --dir DIR (HOME is not set)")
	}
	return dir, nil
}

// lifetimes parses "access=5m,refresh=1h" (repeatable).
type lifetimes struct{ l testbed.Lifetimes }

func (f *lifetimes) String() string { return "" }

func (f *lifetimes) Set(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		d, err := time.ParseDuration(val)
		if !ok || err != nil || d <= 0 {
			return fmt.Errorf("want NAME=DURATION (like access=5m), got %q", kv)
		}
		switch k {
		case "access":
			f.l.Access = d
		case "refresh":
			f.l.Refresh = d
		case "device":
			f.l.DeviceCode = d
		case "interval":
			f.l.PollInterval = d
		default:
			return fmt.Errorf("unknown lifetime %q (use access, refresh, device or interval)", k)
		}
	}
	return nil
}

// password returns a random password that is easy to type.
func password() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:4]) + "-" + string(b[4:8]) + "-" + string(b[8:])
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) error {
	fs := newFlags("serve", stderr)
	https := fs.Bool("https", false, "serve over TLS with a generated CA (written to DIR/ca.pem)")
	addr := fs.String("addr", "127.0.0.1:0", "provider listen address")
	storageAddr := fs.String("storage-addr", "127.0.0.1:0", "storage listen address")
	noStorage := fs.Bool("no-storage", false, "do not run the WebDAV storage")
	dir := fs.String("dir", "", "directory for the CA, keys and admin token (default $XDG_STATE_HOME/tokenhelper-testbed)")
	verbose := fs.Bool("verbose", false, "log every request to stderr (never tokens)")
	var lt lifetimes
	fs.Var(&lt, "lifetime", "lifetimes, e.g. access=5m,refresh=24h,device=10m,interval=1s (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return helper.Errorf(helper.KindUsage, "serve takes no arguments, got %q", pos[0])
	}
	d, err := resolveDir(*dir, getenv)
	if err != nil {
		return err
	}
	// zitadel op logs through slog; keep its chatter out of the way.
	level := slog.LevelError
	if *verbose {
		level = slog.LevelWarn
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))

	users := testbed.DemoUsers()
	for i := range users {
		users[i].Password = password()
	}
	opts := testbed.Options{
		HTTPS: *https, Addr: *addr, StorageAddr: *storageAddr, Dir: d,
		Users: users, Lifetimes: lt.l, Storage: !*noStorage,
	}
	if *verbose {
		var mu sync.Mutex
		opts.Logf = func(format string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
		}
	}
	tb, err := testbed.New(opts)
	if err != nil {
		return err
	}
	defer tb.Close()
	printSummary(stdout, tb, users, d)
	<-ctx.Done()
	fmt.Fprintln(stderr, "tokenhelper-testbed: stopping")
	return nil
}

func printSummary(w io.Writer, tb *testbed.Testbed, users []testbed.User, dir string) {
	l := tb.Lifetimes()
	fmt.Fprintf(w, "tokenhelper test bed: an INDIGO-IAM-like identity provider on loopback\n\n")
	fmt.Fprintf(w, "  issuer       %s\n", tb.IssuerURL)
	if tb.StorageURL != "" {
		fmt.Fprintf(w, "  storage      %s  (audience %s)\n", tb.StorageURL, tb.StorageOrigin())
	}
	if tb.CAFile != "" {
		fmt.Fprintf(w, "  CA file      %s\n", tb.CAFile)
	}
	fmt.Fprintf(w, "  device page  %s\n", tb.DevicePageURL())
	for i, u := range users {
		label := "users"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "  %-12s %s / %s  (%s)\n", label, u.Name, u.Password, strings.Join(u.Scopes, " "))
	}
	fmt.Fprintf(w, "  demo client  %s  (public; device and refresh grants)\n", testbed.DemoClientID)
	fmt.Fprintf(w, "  lifetimes    access %v, refresh %v, device code %v, poll interval %v\n", l.Access, l.Refresh, l.DeviceCode, l.PollInterval)
	fmt.Fprintf(w, "  approve      tokenhelper-testbed approve CODE --user alice --dir %s\n", dir)
	fmt.Fprintf(w, "               or POST %s/device/approve (user_code, user) with the bearer token in %s\n",
		tb.AdminURL(), filepath.Join(dir, "admin-token"))
	fmt.Fprintf(w, "\nA tokenhelper profile for it (add to your tokenhelper configuration):\n\n%s\n", tb.ProfileTOML("testbed", nil))
	fmt.Fprintf(w, "Running until interrupted (Ctrl-C).\n")
}

// adminClient reaches a running test bed through its admin API.
type adminClient struct {
	info  testbed.Info
	token string
	http  *http.Client
}

func newAdminClient(dir string) (*adminClient, error) {
	info, err := testbed.ReadInfo(dir)
	if err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(info.AdminTokenFile)
	if err != nil {
		return nil, (&helper.Error{Kind: helper.KindConfig, Msg: "cannot read the admin token", Err: err}).WithFix("check %s", info.AdminTokenFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if info.CAFile != "" {
		pem, err := os.ReadFile(info.CAFile)
		if err != nil {
			return nil, (&helper.Error{Kind: helper.KindConfig, Msg: "cannot read the test bed's CA file", Err: err}).WithFix("check %s", info.CAFile)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &adminClient{info: info, token: strings.TrimSpace(string(tok)), http: &http.Client{Transport: tr}}, nil
}

// post calls an admin endpoint with a form and decodes the JSON answer.
func (c *adminClient) post(ctx context.Context, path string, form url.Values) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.info.AdminURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot build the request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, (&helper.Error{Kind: helper.KindUnavailable, Msg: "the test bed at " + c.info.Issuer + " does not answer", Err: err}).
			WithFix("is `tokenhelper-testbed serve` still running?")
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, helper.Errorf(helper.KindUnavailable, "the test bed answered %s without JSON", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := out["error"].(string)
		kind := helper.KindUsage
		if resp.StatusCode == http.StatusRequestTimeout {
			kind = helper.KindUnavailable
		}
		return nil, helper.Errorf(kind, "%s", msg)
	}
	return out, nil
}

func approve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env, allow bool) error {
	name := map[bool]string{true: "approve", false: "deny"}[allow]
	fs := newFlags(name, stderr)
	dir := fs.String("dir", "", "the test bed's directory (default $XDG_STATE_HOME/tokenhelper-testbed)")
	user := new(string)
	next := new(bool)
	wait := new(time.Duration)
	if allow {
		user = fs.String("user", "", "the user who approves (alice, bob)")
		next = fs.Bool("next", false, "approve the oldest pending request, waiting for one")
		wait = fs.Duration("wait", 30*time.Second, "with --next: how long to wait for a request")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if allow && *user == "" {
		return helper.Errorf(helper.KindUsage, "who approves?").WithFix("pass --user alice")
	}
	if *next != (len(pos) == 0) || len(pos) > 1 {
		return helper.Errorf(helper.KindUsage, "%s takes one user code (like BCDF-GHJK)%s", name,
			map[bool]string{true: " or --next", false: ""}[allow])
	}
	d, err := resolveDir(*dir, getenv)
	if err != nil {
		return err
	}
	c, err := newAdminClient(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *wait+30*time.Second)
	defer cancel()
	var out map[string]any
	switch {
	case *next:
		out, err = c.post(ctx, "/device/approve-next", url.Values{"user": {*user}, "wait": {wait.String()}})
	case allow:
		out, err = c.post(ctx, "/device/approve", url.Values{"user_code": {pos[0]}, "user": {*user}})
	default:
		out, err = c.post(ctx, "/device/deny", url.Values{"user_code": {pos[0]}})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %v\n", out["status"], out["user_code"])
	return nil
}

func advance(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) error {
	fs := newFlags("advance", stderr)
	dir := fs.String("dir", "", "the test bed's directory (default $XDG_STATE_HOME/tokenhelper-testbed)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return helper.Errorf(helper.KindUsage, "advance takes one duration, like 2h")
	}
	if _, err := time.ParseDuration(pos[0]); err != nil {
		return helper.Errorf(helper.KindUsage, "%q is not a duration", pos[0]).WithFix("write it like 90m or 2h")
	}
	d, err := resolveDir(*dir, getenv)
	if err != nil {
		return err
	}
	c, err := newAdminClient(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := c.post(ctx, "/clock/advance", url.Values{"by": {pos[0]}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test bed clock now %v\n", out["now"])
	return nil
}
