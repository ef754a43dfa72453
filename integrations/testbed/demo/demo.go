// Package demo is the guided tour behind `make demo`: it starts the
// loopback test bed (an INDIGO-IAM-like OpenID provider and a WLCG WebDAV
// storage, integrations/testbed) in-process, gives the real tokenhelper
// executable a private HOME, and runs it step by step as a new user would
// — register, device-flow login (approved automatically as soon as the code
// is shown, through the test bed's approve API), inspect, a down-scoped
// token, the WLCG Bearer Token Discovery file, an upload and a download
// through `tokenhelper curl` (token on curl's stdin, never in argv; Go's HTTP client when
// curl is absent), status and logout — printing each command and its
// output like a tutorial. Any step that fails fails the tour.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// Options configure Run.
type Options struct {
	// Tokenhelper is the tokenhelper executable to run (required).
	Tokenhelper string
	// Out receives the tour (default os.Stdout).
	Out io.Writer
	// Curl is the curl executable; "" looks for curl in PATH, "-" uses
	// Go's HTTP client instead.
	Curl string
	// Dir holds everything (HOME, the test bed); default: a temporary
	// directory removed at the end.
	Dir string
	// Keep keeps a temporary Dir.
	Keep bool
	// StepTimeout bounds each command (default 2 minutes).
	StepTimeout time.Duration
	// User approves the device flow (default "alice").
	User string
	// Env is added to the environment of every command (tests).
	Env []string
}

// Run runs the tour. It returns the first failure.
func Run(ctx context.Context, o Options) (err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = 2 * time.Minute
	}
	if o.User == "" {
		o.User = "alice"
	}
	th, err := filepath.Abs(o.Tokenhelper)
	if err != nil || o.Tokenhelper == "" {
		return errors.New("no tokenhelper executable given (build it with: make build)")
	}
	if _, err := os.Stat(th); err != nil {
		return fmt.Errorf("tokenhelper executable %s: %w (build it with: make build)", th, err)
	}
	curl, why := o.Curl, "--no-curl"
	if curl == "" {
		if p, err := exec.LookPath("curl"); err == nil {
			curl = p
		} else {
			curl, why = "-", "curl is not installed"
		}
	}

	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tokenhelper-demo-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	d := &tour{o: o, th: th, curl: curl, noCurl: why, dir: dir, out: o.Out}
	return d.run(ctx)
}

type tour struct {
	o    Options
	th   string
	curl string
	// noCurl says why Go's HTTP client stands in for curl.
	noCurl string
	dir    string
	out    io.Writer
	tb     *testbed.Testbed
	env    []string
	step   int

	mu sync.Mutex // serializes writes to out
}

const profile = "demo"

func (d *tour) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

// short replaces the demo directory by $DEMO in what is shown.
func (d *tour) short(s string) string { return strings.ReplaceAll(s, d.dir, "$DEMO") }

func (d *tour) heading(title string) {
	d.step++
	d.printf("\n== %d. %s ==\n", d.step, title)
}

func (d *tour) run(ctx context.Context) error {
	home := filepath.Join(d.dir, "home")
	run := filepath.Join(d.dir, "run")
	for _, p := range []string{home, run} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	pass := make([]byte, 12)
	rand.Read(pass)
	d.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + run,
		"TZ=UTC",
		"LANG=C.UTF-8",
		"DEMO_PASSPHRASE=" + hex.EncodeToString(pass),
	}
	d.env = append(d.env, d.o.Env...)

	d.printf("tokenhelper demo: a loopback IAM, a WLCG storage and the real tokenhelper, step by step.\n")
	d.printf("Everything lives in %s ($DEMO below)%s.\n", d.dir, map[bool]string{true: " and is kept", false: " and is removed at the end"}[d.o.Keep || d.o.Dir != ""])

	tb, err := testbed.New(testbed.Options{
		HTTPS:     true,
		Storage:   true,
		Dir:       filepath.Join(d.dir, "testbed"),
		Lifetimes: testbed.Lifetimes{PollInterval: time.Second},
	})
	if err != nil {
		return fmt.Errorf("cannot start the test bed: %w", err)
	}
	defer tb.Close()
	d.tb = tb
	aud := tb.StorageOrigin()
	d.printf("\nThe test bed runs in this process:\n")
	d.printf("  identity provider  %s  (INDIGO IAM-like: device flow, refresh-token rotation, RFC 7591)\n", tb.IssuerURL)
	d.printf("  WLCG storage       %s  (WebDAV; accepts tokens for audience %s)\n", tb.StorageURL, aud)
	d.printf("  private CA         %s\n", d.short(tb.CAFile))
	d.printf("  users              alice, bob (alice approves the logins below)\n")
	d.printf("tokenhelper runs as a separate program with HOME=$DEMO/home and XDG_RUNTIME_DIR=$DEMO/run.\n")

	scopes := "openid offline_access wlcg.groups storage.read:/ storage.create:/ storage.modify:/home/" + d.o.User

	d.heading("Register a client and log in with the device flow")
	d.printf("register finds the provider, registers a client for this machine, and logs in.\n")
	d.printf("The passphrase protecting the stored secrets comes from $DEMO_PASSPHRASE (--pw-env);\n")
	d.printf("at a terminal you would type it. --headless runs the device flow without a terminal:\n")
	d.printf("here %s approves the code in her \"browser\" as soon as it is shown.\n", d.o.User)
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"register", "-p", profile, "--issuer", tb.IssuerURL, "--ca-file", tb.CAFile,
		"--scope", scopes, "--pw-env", "DEMO_PASSPHRASE", "--headless"}, approve: true}); err != nil {
		return err
	}
	if _, err := d.show(filepath.Join(home, ".config", "tokenhelper", "config.toml")); err != nil {
		return err
	}

	d.heading("Log in again: nothing to do while the token is valid")
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"login", "-p", profile}}); err != nil {
		return err
	}

	d.heading("What the token says")
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"inspect", "-p", profile}}); err != nil {
		return err
	}

	d.heading("A token for one storage, with only the scope it needs")
	d.printf("Down-scoping is a refresh with scope and audience; the rotated refresh token is stored\n")
	d.printf("(encrypted) before the command ends. The token goes to stdout and nowhere else:\n")
	readArgs := []string{"token", "-p", profile, "-s", "storage.read:/", "--aud", aud}
	tok, err := d.cmd(ctx, cmdSpec{args: readArgs, secretStdout: true})
	if err != nil {
		return err
	}
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"inspect", "-"}, stdin: tok, stdinLabel: "tokenhelper " + strings.Join(readArgs, " ") + " | "}); err != nil {
		return err
	}

	d.heading("Where xrdcp, gfal and davix look: WLCG Bearer Token Discovery")
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"export", "-p", profile, "-s", "storage.read:/", "--aud", aud}}); err != nil {
		return err
	}
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"discover"}}); err != nil {
		return err
	}

	d.heading("Upload and download a file with the token")
	if err := d.transfer(ctx, aud); err != nil {
		return err
	}

	d.heading("State, then logout")
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"status", "-p", profile}}); err != nil {
		return err
	}
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"logout", "-p", profile}}); err != nil {
		return err
	}
	c := tb.Counters()
	d.printf("\nWhat the provider saw: token endpoint %d requests (device-code polls %d, refreshes %d), registration endpoint %d, revocation %d.\n",
		c.Endpoint(testbed.EndpointToken), c.Grant(testbed.GrantDeviceCode), c.Grant(testbed.GrantRefreshToken),
		c.Endpoint(testbed.EndpointRegistration), c.Endpoint(testbed.EndpointRevocation))
	d.printf("Done: every step worked. Next: README.md, docs/, and tokenhelper --help.\n")
	return nil
}

// transfer PUTs a file with a create-scoped token and GETs it back with
// the discovery file's read-scoped token.
func (d *tour) transfer(ctx context.Context, aud string) error {
	url := d.tb.StorageURL + "home/" + d.o.User + "/hello.txt"
	content := "Hello from the tokenhelper demo, " + time.Now().UTC().Format(time.RFC3339) + "\n"
	local := filepath.Join(d.dir, "hello.txt")
	if err := os.WriteFile(local, []byte(content), 0o600); err != nil {
		return err
	}
	if d.curl == "-" {
		writeArgs := []string{"token", "-p", profile, "-s", "storage.create:/home/" + d.o.User, "--aud", aud}
		d.printf("A write token, limited to storage.create:/home/%s:\n", d.o.User)
		wtok, err := d.cmd(ctx, cmdSpec{args: writeArgs, secretStdout: true})
		if err != nil {
			return err
		}
		discovered := filepath.Join(d.dir, "run", "bt_u"+strconv.Itoa(os.Geteuid()))
		rtok, err := os.ReadFile(discovered)
		if err != nil {
			return fmt.Errorf("the discovery file %s: %w", discovered, err)
		}
		d.printf("\n(%s: doing the same with Go's HTTP client.)\n", d.noCurl)
		return d.transferGo(ctx, url, content, strings.TrimSpace(wtok), strings.TrimSpace(string(rtok)))
	}
	d.printf("tokenhelper curl gets a token for the URL and hands it to curl on curl's stdin\n")
	d.printf("(-K -), never in curl's argv or environment; curl's exit status passes through.\n")
	d.printf("Upload with a write token limited to storage.create:/home/%s:\n", d.o.User)
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"curl", "-p", profile, "--scope", "storage.create:/home/" + d.o.User, "--aud", aud,
		"-sS", "-f", "--cacert", d.tb.CAFile, "-T", local, url}}); err != nil {
		return err
	}
	d.printf("  (uploaded %d bytes)\n", len(content))
	back := filepath.Join(d.dir, "hello.back")
	d.printf("\nDownload with a read token:\n")
	if _, err := d.cmd(ctx, cmdSpec{args: []string{"curl", "-p", profile, "--scope", "storage.read:/", "--aud", aud,
		"-sS", "-f", "--cacert", d.tb.CAFile, "-o", back, url}}); err != nil {
		return err
	}
	body, err := os.ReadFile(back)
	if err != nil {
		return err
	}
	d.indent(string(body))
	if string(body) != content {
		return fmt.Errorf("the file read back differs from the one written")
	}
	return nil
}

func (d *tour) transferGo(ctx context.Context, url, content, wtok, rtok string) error {
	hc := d.tb.HTTPClient()
	do := func(method, tok string, body io.Reader) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, d.o.StepTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, url, body)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		d.printf("  %s %s: HTTP %d\n", method, url, resp.StatusCode)
		if resp.StatusCode/100 != 2 {
			return "", fmt.Errorf("%s %s: HTTP %d", method, url, resp.StatusCode)
		}
		return string(b), nil
	}
	if _, err := do(http.MethodPut, wtok, strings.NewReader(content)); err != nil {
		return err
	}
	body, err := do(http.MethodGet, rtok, nil)
	if err != nil {
		return err
	}
	d.indent(body)
	if body != content {
		return errors.New("the file read back differs from the one written")
	}
	return nil
}

// show prints a file the way `cat` would.
func (d *tour) show(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	d.printf("\n$ cat %s\n", d.short(path))
	d.indent(string(b))
	return string(b), nil
}

func (d *tour) indent(s string) {
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		d.printf("  %s\n", d.short(line))
	}
}

type cmdSpec struct {
	args []string
	// stdin is fed to the command (default: empty, like </dev/null).
	stdin      string
	stdinLabel string // shown before the command
	// secretStdout: stdout is a token: returned, shown shortened.
	secretStdout bool
	// approve: approve a device code as soon as the output shows it.
	approve bool
}

// cmd runs tokenhelper with args, shows the command and its output, and
// returns its stdout. A non-zero exit is an error.
func (d *tour) cmd(ctx context.Context, s cmdSpec) (string, error) {
	shown := make([]string, len(s.args))
	for i, a := range s.args {
		shown[i] = shellWord(d.short(a))
	}
	d.printf("\n$ %stokenhelper %s\n", s.stdinLabel, strings.Join(shown, " "))
	ctx, cancel := context.WithTimeout(ctx, d.o.StepTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, d.th, s.args...)
	c.Env = d.env
	c.Dir = d.dir
	c.Stdin = strings.NewReader(s.stdin)
	var seen []string // output lines so far, for the device code
	lw := &lineWriter{line: func(l string) {
		d.printf("  %s\n", d.short(l))
		seen = append(seen, l)
		if s.approve && strings.HasPrefix(l, "Waiting for approval") {
			d.approveShown(strings.Join(seen, "\n"))
		}
	}}
	var stdout bytes.Buffer
	if s.secretStdout {
		c.Stdout = &stdout
	} else {
		c.Stdout = lw
	}
	c.Stderr = lw
	err := c.Run()
	lw.flush()
	if s.secretStdout {
		t := strings.TrimSpace(stdout.String())
		if len(t) > 40 {
			d.printf("  %s… (%d characters)\n", t[:40], len(t))
		} else if t != "" {
			d.printf("  %s\n", t)
		}
	}
	if err != nil {
		return "", fmt.Errorf("step %d: tokenhelper %s failed: %v", d.step, s.args[0], err)
	}
	return stdout.String(), nil
}

// approveShown approves the pending device requests whose user code the
// output shows, as the demo user would in a browser.
func (d *tour) approveShown(output string) {
	for _, r := range d.tb.PendingDevices() {
		if strings.Contains(output, r.UserCode) {
			if err := d.tb.ApproveDevice(r.UserCode, d.o.User); err == nil {
				d.printf("  [test bed: %s opens the page, signs in and approves code %s]\n", d.o.User, r.UserCode)
			}
		}
	}
}

// lineWriter calls line for each complete line written.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		l := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		w.line(l)
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// shellWord quotes s for display when it holds spaces or quotes.
func shellWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'`\\*?;&|<>()") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
