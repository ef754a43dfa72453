package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// EnvLeakPackages overrides the packages the leak scan runs (space
// separated import path patterns).
const EnvLeakPackages = "TOKENHELPER_LEAKSCAN_PKGS"

// EnvLeakE2E adds the end-to-end suite (integrations/e2e, build tag e2e:
// needs root and installs the tools it drives) to the leak scan.
const EnvLeakE2E = "TOKENHELPER_LEAKSCAN_E2E"

// EnvLeakKeepTraces keeps the strace outputs (NAME.trace, 0600: they hold
// every secret the suites handled) next to the logs in the evidence
// directory, to look into a finding; otherwise they live and die in the
// scan's temporary directory.
const EnvLeakKeepTraces = "TOKENHELPER_LEAKSCAN_KEEP_TRACES"

// defaultLeakPackages are the suites that run tokenhelper end to end:
// the CLI scripts, the backends (native against the test bed, the real
// oidc-agent, plugins over go-plugin), every integration.
var defaultLeakPackages = []string{"./cmd/...", "./plugins/...", "./integrations/..."}

// TestLeakScan runs the suites at maximum verbosity under strace and
// searches everything they wrote, every argv and environment they
// started, and every file others could read, for the secrets the test
// beds issued.
func TestLeakScan(t *testing.T) {
	gate(t)
	straceBin := rig.NeedTool(t, "strace", "strace")
	setsidBin := rig.NeedTool(t, "setsid", "util-linux")
	root, err := rig.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := rig.ShortTempDir(t) // short: unix sockets live under TMPDIR
	evidence := filepath.Join(out(t), "leakscan")
	traces := filepath.Join(work, "traces")
	if os.Getenv(EnvLeakKeepTraces) == "1" {
		traces = evidence
	}
	for _, d := range []string{filepath.Join(work, "tmp"), filepath.Join(work, "bin"), traces, evidence} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The end-to-end suite's xrootd runs as its own user and must pass
	// through TMPDIR to its files (not list it).
	for _, d := range []string{work, filepath.Join(work, "tmp")} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	secretsFile := filepath.Join(work, "secrets")

	pkgs := listPackages(t, root)
	var suites []suite
	for _, p := range pkgs {
		if s, ok := compileSuite(t, root, work, p.path, p.dir, ""); ok {
			suites = append(suites, s)
		}
	}
	if os.Getenv(EnvLeakE2E) == "1" {
		if s, ok := compileSuite(t, root, work, "github.com/tokenhelper/tokenhelper/integrations/e2e", filepath.Join(root, "integrations", "e2e"), "e2e"); ok {
			suites = append(suites, s)
		}
	}

	var sc scan
	sc.files = map[string][]byte{}
	for _, s := range suites {
		sc.run(t, straceBin, setsidBin, work, traces, secretsFile, evidence, s)
	}

	secrets := loadSecrets(t, secretsFile)
	t.Logf("%d suites, %d secrets issued by their test beds", len(suites), len(secrets))
	if len(secrets) == 0 {
		t.Fatal("the test beds recorded no secret: the scan would prove nothing")
	}
	rep := sc.analyze(t, secrets)
	writeReport(t, "leakscan.md", rep.markdown(len(suites), len(secrets), &sc))
	for _, f := range rep.violations {
		t.Errorf("LEAK: %s", f)
	}
	for _, r := range sc.results {
		if !r.complete {
			// What its tests did not reach was never run, so never
			// searched: the scan proves nothing about it.
			t.Errorf("suite %s did not run to completion (under strace: %s; without strace: %s): the leak scan is incomplete; see %s",
				r.name, r.underStrace, r.withoutStrace, r.log)
		}
	}
}

type pkg struct{ path, dir string }

func listPackages(t *testing.T, root string) []pkg {
	pats := defaultLeakPackages
	if v := os.Getenv(EnvLeakPackages); v != "" {
		pats = strings.Fields(v)
	}
	args := append([]string{"list", "-f", "{{.ImportPath}} {{.Dir}} {{len .TestGoFiles}} {{len .XTestGoFiles}}"}, pats...)
	c := exec.Command("go", args...)
	c.Dir = root
	outb, err := c.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var out []pkg
	for _, l := range strings.Split(strings.TrimSpace(string(outb)), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || (f[2] == "0" && f[3] == "0") {
			continue
		}
		if strings.Contains(f[0], "/integrations/bench") || strings.Contains(f[0], "/integrations/reliability") {
			continue // this campaign and the benchmarks: not suites to scan
		}
		out = append(out, pkg{f[0], f[1]})
	}
	return out
}

// suite is one compiled test binary.
type suite struct {
	name, bin, dir string
}

func compileSuite(t *testing.T, root, work, path, dir, tags string) (suite, bool) {
	name := strings.ReplaceAll(strings.TrimPrefix(path, "github.com/tokenhelper/tokenhelper/"), "/", "_")
	if tags != "" {
		name += "_tags_" + tags
	}
	bin := filepath.Join(work, "bin", name+".test")
	args := []string{"test", "-c", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	c := exec.Command("go", append(args, path)...)
	c.Dir = root
	if b, err := c.CombinedOutput(); err != nil {
		t.Errorf("go test -c %s: %v\n%s", path, err, b)
		return suite{}, false
	}
	if _, err := os.Stat(bin); err != nil {
		return suite{}, false // no tests
	}
	return suite{name: name, bin: bin, dir: dir}, true
}

// scan holds what the runs produced.
type scan struct {
	mu      sync.Mutex
	traces  []string          // strace output files
	logs    []string          // test output files
	procs   []procSnap        // /proc snapshots (deduplicated)
	files   map[string][]byte // files others could read: path → content
	results []suiteResult
	polls   int
}

// suiteResult is how one suite's runs ended.
type suiteResult struct {
	name, log string
	took      time.Duration
	// traced: the run under strace ended well (every write and start
	// attributed); complete: a run ended well (with or without strace).
	traced, complete bool
	underStrace      string // the error of the run under strace
	withoutStrace    string // the error of the run again without it
	// left: what the suite left running in its session once its test
	// binary ended (killed, so that strace ends and the next suite
	// starts clean).
	left []string
}

func (r suiteResult) outcome() string {
	var o string
	switch {
	case r.traced:
		o = "ok"
	case r.complete:
		o = "failed under strace (" + r.underStrace + "); without strace: ok (argv, environment, files and output scanned; no per-write attribution)"
	default:
		o = "**did not run to completion**: failed under strace (" + r.underStrace + ") and without it (" + r.withoutStrace + "): see " + filepath.Base(r.log)
	}
	if len(r.left) > 0 {
		o += "; left running after its tests ended (killed): " + strings.Join(r.left, ", ")
	}
	return o
}

// leftovers are the processes a suite left running in its session (the
// test binary is a session leader: what it started stays in its session
// unless it made a session of its own).
type leftovers struct {
	mu   sync.Mutex
	seen map[int]string // pid → command line
}

// watch waits for the session leader (leader returns 0 while it is not
// known yet) to end, then kills what is still in its session, until
// done: strace waits for every process it traces, and a process left
// running would otherwise hold the scan and be seen by the next suite's
// tests (one looks for its own leftovers by name, machine-wide).
func (l *leftovers) watch(leader func() int, done <-chan struct{}) {
	sid := 0
	for {
		select {
		case <-done:
			if sid == 0 {
				sid = leader()
			}
			if sid > 0 {
				l.kill(sid)
			}
			return
		case <-time.After(100 * time.Millisecond): // sampling /proc: there is no event to wait on
		}
		if sid == 0 {
			sid = leader()
			continue
		}
		if s, ok := sessionOf(sid); ok && s == sid {
			continue // the test binary still runs
		}
		l.kill(sid)
	}
}

// kill sends SIGKILL to every process of session sid but its leader.
func (l *leftovers) kill(sid int) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == sid {
			continue
		}
		if s, ok := sessionOf(pid); !ok || s != sid {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		// It may have ended meanwhile: nothing to kill then.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			continue
		}
		l.mu.Lock()
		if l.seen == nil {
			l.seen = map[int]string{}
		}
		if _, ok := l.seen[pid]; !ok {
			l.seen[pid] = short(strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
		l.mu.Unlock()
	}
}

func (l *leftovers) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for pid, cmd := range l.seen {
		out = append(out, fmt.Sprintf("%s (pid %d)", cmd, pid))
	}
	sort.Strings(out)
	return out
}

// sessionOf is the session of a live process (field 6 of
// /proc/PID/stat); a zombie has none left to speak of.
func sessionOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	sid, err := strconv.Atoi(f[3])
	return sid, err == nil
}

// firstTracePid is the pid of the first line of a strace output (strace's
// child), 0 while there is none.
func firstTracePid(trace string) int {
	f, err := os.Open(trace)
	if err != nil {
		return 0
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString(' ')
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	return pid
}

type procSnap struct {
	pid, ppid            int
	cmdline, environ     string
	parentCmd, parentEnv string
}

// straceArgs are strace's options: follow every process and thread,
// paths of file descriptors (-y), whole argv, environments and writes,
// exit lines (-q, not -qq: they end a pid's life, pids are reused).
func straceArgs(trace string) []string {
	return []string{"-f", "-q", "-y", "-v", "-s", "1048576", "--seccomp-bpf", "-e", "signal=none",
		"-e", "trace=execve,clone,clone3,fork,vfork,write,writev,pwrite64,chmod,fchmod,fchmodat", "-o", trace}
}

// run runs one suite under strace with the /proc and file pollers.
func (sc *scan) run(t *testing.T, straceBin, setsidBin, work, traces, secretsFile, evidence string, s suite) {
	trace := filepath.Join(traces, s.name+".trace")
	// strace would create it 0644: it holds every secret the suite
	// handled.
	if err := os.WriteFile(trace, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(trace, 0o600); err != nil { // one kept from an earlier run
		t.Fatal(err)
	}
	logPath := filepath.Join(evidence, s.name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // it holds test tokens
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	testArgs := []string{s.bin, "-test.v", "-test.count=1", "-test.timeout=40m"}
	// strace leads a process group of its own, away from this test's;
	// the suite runs in a session of its own below it (setsid calls
	// setsid(2) and execs it: same pid, so every write stays attributed):
	// a test that signals its own process group reaches its own
	// processes, never strace.
	args := append(append(straceArgs(trace), "--", setsidBin), testArgs...)
	c := exec.CommandContext(ctx, straceBin, args...)
	c.Dir = s.dir
	tmp := filepath.Join(work, "tmp")
	c.Env = append(os.Environ(),
		"TMPDIR="+tmp,
		"TOKENHELPER_VERBOSE=2",
		testbed.EnvRecordSecrets+"="+secretsFile,
		"GORACE=atexit_sleep_ms=0",
	)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var left leftovers
	wg.Add(3)
	go func() { defer wg.Done(); sc.pollProc(c.Process.Pid, done) }()
	go func() { defer wg.Done(); sc.pollFiles(tmp, done) }()
	// The suite's session: strace's child, the first pid of the trace.
	go func() { defer wg.Done(); left.watch(func() int { return firstTracePid(trace) }, done) }()
	err = c.Wait()
	close(done)
	wg.Wait()
	res := suiteResult{name: s.name, log: logPath, traced: err == nil, complete: err == nil}
	if err != nil {
		// ptrace changes timing: run the suite again without strace,
		// the pollers and the log still on.
		res.underStrace = err.Error()
		if _, err := logf.WriteString("\n==== again without strace ====\n"); err != nil {
			t.Fatal(err)
		}
		c2 := exec.CommandContext(ctx, testArgs[0], testArgs[1:]...)
		c2.Dir, c2.Env, c2.Stdout, c2.Stderr = s.dir, c.Env, logf, logf
		c2.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // as under strace: its signals stay its own
		if err := c2.Start(); err != nil {
			t.Fatal(err)
		}
		done2 := make(chan struct{})
		wg.Add(3)
		go func() { defer wg.Done(); sc.pollProc(c2.Process.Pid, done2) }()
		go func() { defer wg.Done(); sc.pollFiles(tmp, done2) }()
		go func() { defer wg.Done(); left.watch(func() int { return c2.Process.Pid }, done2) }()
		err2 := c2.Wait()
		close(done2)
		wg.Wait()
		res.complete = err2 == nil
		if err2 != nil {
			res.withoutStrace = err2.Error()
		}
	}
	res.left = left.list()
	res.took = time.Since(start).Round(time.Second)
	t.Logf("suite %s: %s in %s", s.name, res.outcome(), res.took)
	sc.mu.Lock()
	sc.traces = append(sc.traces, trace)
	sc.logs = append(sc.logs, logPath)
	sc.results = append(sc.results, res)
	sc.mu.Unlock()
}

// pollProc snapshots argv and environment of every process descending
// from root, every few milliseconds, until done.
func (sc *scan) pollProc(root int, done <-chan struct{}) {
	seen := map[string]bool{}
	for {
		select {
		case <-done:
			return
		case <-time.After(5 * time.Millisecond): // sampling /proc: there is no event to wait on
		}
		parents := map[int]int{}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if pp, ok := ppidOf(pid); ok {
				parents[pid] = pp
			}
		}
		sc.mu.Lock()
		sc.polls++
		sc.mu.Unlock()
		for pid := range parents {
			if !descends(pid, root, parents) {
				continue
			}
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			key := fmt.Sprintf("%d\x00%s\x00%s", pid, cmd, env)
			if seen[key] || len(cmd) == 0 {
				continue
			}
			seen[key] = true
			pcmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", parents[pid]))
			penv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", parents[pid]))
			sc.mu.Lock()
			sc.procs = append(sc.procs, procSnap{pid: pid, ppid: parents[pid], cmdline: string(cmd), environ: string(env), parentCmd: string(pcmd), parentEnv: string(penv)})
			sc.mu.Unlock()
		}
	}
}

func ppidOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

func descends(pid, root int, parents map[int]int) bool {
	for range 64 {
		if pid == root {
			return true
		}
		pp, ok := parents[pid]
		if !ok || pp <= 1 {
			return false
		}
		pid = pp
	}
	return false
}

// pollFiles keeps the content of every file under dir that its group or
// others may read (up to 1 MiB each), until done.
func (sc *scan) pollFiles(dir string, done <-chan struct{}) {
	for {
		// Files come and go while the tests run: what cannot be read
		// now is skipped, the walk goes on.
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil //nolint:nilerr // vanished or unreadable: skipped, the walk goes on
			}
			fi, err := d.Info()
			if err != nil || fi.Mode().Perm()&0o044 == 0 || fi.Size() > 1<<20 {
				return nil //nolint:nilerr // vanished, private or too large: skipped
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil //nolint:nilerr // vanished: skipped
			}
			key := p + "\x00" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
			sc.mu.Lock()
			if _, ok := sc.files[key]; !ok {
				sc.files[key] = b
			}
			sc.mu.Unlock()
			return nil
		})
		select {
		case <-done:
			return
		case <-time.After(100 * time.Millisecond): // sampling the tree
		}
	}
}

// secret values and their kinds.
type secretSet map[string]string

func loadSecrets(t *testing.T, path string) secretSet {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no secrets recorded: %v", err)
	}
	s := secretSet{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, "\t")
		if !ok || len(v) < 12 {
			continue // short values (none issued) would match by chance
		}
		s[v] = k
	}
	return s
}

// isTokenChar is the alphabet of every secret the test bed issues
// (base64url, JWTs) and of its demo passwords.
func isTokenChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// find returns the kinds of the secrets in s: every maximal run of the
// secrets' alphabet is looked up.
func (ss secretSet) find(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		if !isTokenChar(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		if j-i >= 12 {
			if k, ok := ss[s[i:j]]; ok {
				out = append(out, k)
			}
		}
		i = j
	}
	return out
}

// jwtShaped reports whether s holds something that looks like a signed
// JWT (three base64url parts, the first a JSON header).
func jwtShaped(s string) bool {
	for i := strings.Index(s, "eyJ"); i >= 0; {
		j := i
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		if run := s[i:j]; len(run) >= 40 && strings.Count(run, ".") == 2 {
			return true
		}
		k := strings.Index(s[j:], "eyJ")
		if k < 0 {
			return false
		}
		i = j + k
	}
	return false
}

// redact replaces the secrets in s by their kinds, for the report.
func (ss secretSet) redact(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !isTokenChar(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		run := s[i:j]
		if k, ok := ss[run]; ok && j-i >= 12 {
			b.WriteString("<" + strings.ToUpper(k) + ">")
		} else if strings.HasPrefix(run, "eyJ") && len(run) >= 40 && strings.Count(run, ".") == 2 {
			b.WriteString("<JWT>")
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

// process is what the trace says about one process.
type process struct {
	argv, env string // as strace printed them (execve's arguments)
	parent    *process
}

// role classifies a process.
func (p *process) role() string {
	if p == nil {
		return "unknown"
	}
	a := p.argv
	switch {
	case strings.Contains(p.env, "_BE_TOKENHELPER=1"):
		return "tokenhelper"
	case argv0Base(a) == "tokenhelper" || strings.HasSuffix(argv0Base(a), "-credential-tokenhelper") ||
		strings.HasPrefix(argv0Base(a), "tokenhelper-plugin"):
		return "tokenhelper"
	case strings.HasSuffix(argv0Base(a), ".test"):
		return "test"
	}
	return "other"
}

// companion reports whether p is tokenhelper's plugin companion or a
// plugin, whose stdout is a pipe back to tokenhelper.
func (p *process) companion() bool {
	b := argv0Base(p.argv)
	return b == "tokenhelper-pluginhost" || strings.HasPrefix(b, "tokenhelper-plugin-")
}

// subcommand is tokenhelper's first non-flag argument (its command).
func (p *process) subcommand() string {
	if strings.HasSuffix(argv0Base(p.argv), "-credential-tokenhelper") {
		return "credential-helper"
	}
	args := splitArgv(p.argv)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "-p" || a == "--profile" || a == "--config" {
			i++
			continue
		}
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

// tokenOnStdout are the commands whose output is the token (their
// protocol): it may appear on their stdout, never on stderr.
var tokenOnStdout = []string{"token", "header", "git-credential", "docker-credential", "kube-credential", "credential-helper", "serve", "plugin"}

func argv0Base(argv string) string {
	a := splitArgv(argv)
	if len(a) == 0 {
		return ""
	}
	return filepath.Base(a[0])
}

// splitArgv splits strace's ["a", "b"] rendering (escapes left as they
// are).
func splitArgv(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "[")
	s = strings.TrimSuffix(s, "]")
	var out []string
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			return out
		}
		s = s[i+1:]
		j := 0
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j > len(s) {
			j = len(s)
		}
		out = append(out, s[:j])
		if j >= len(s) {
			return out
		}
		s = s[j+1:]
	}
}

// leakReport is the outcome.
type leakReport struct {
	violations []string
	reviewed   map[string][]string // class → findings that are not leaks by tokenhelper, explained
	counts     map[string]int
	// writers of files that held secrets: path (a temporary file counts
	// for the file it replaces) → "tokenhelper" or the writer's argv.
	writers map[string]string
	// opened: files chmod'ed readable by group or others → who did it.
	opened map[string]string
}

// replaced is the file a temporary file of an atomic write replaces
// (".NAME.tmp-HEX" → "NAME"), or path itself.
func replaced(path string) string {
	dir, base := filepath.Split(path)
	if i := strings.Index(base, ".tmp-"); strings.HasPrefix(base, ".") && i > 1 {
		return filepath.Join(dir, base[1:i])
	}
	return path
}

func (rp *leakReport) add(class, finding string) {
	if len(rp.reviewed[class]) < 8 && !slices.Contains(rp.reviewed[class], finding) {
		rp.reviewed[class] = append(rp.reviewed[class], finding)
	}
	rp.counts[class]++
}

// analyze reads the traces, snapshots, files and logs.
func (sc *scan) analyze(t *testing.T, ss secretSet) *leakReport {
	rp := &leakReport{reviewed: map[string][]string{}, counts: map[string]int{}, writers: map[string]string{}, opened: map[string]string{}}
	for _, tr := range sc.traces {
		analyzeTrace(t, tr, ss, rp)
	}
	for _, p := range sc.procs {
		argvHits := ss.find(strings.ReplaceAll(p.cmdline, "\x00", " "))
		envHits := ss.find(strings.ReplaceAll(p.environ, "\x00", " "))
		if len(argvHits)+len(envHits) == 0 {
			continue
		}
		parent := &process{argv: quoteArgv(p.parentCmd), env: p.parentEnv}
		if parent.role() == "tokenhelper" && (parent.subcommand() == "exec" || parent.subcommand() == "shell") && len(argvHits) > 0 {
			// tokenhelper exec runs the user's argv verbatim; a token in
			// its child's argv was put there by the command itself, after
			// an exec of its own (docs/davix.md's sh -c recipe, whose
			// warning says exactly this). strace sees that execve.
			rp.add("commands run under tokenhelper exec that put the token in their own argv (documented davix recipe)",
				fmt.Sprintf("/proc %d (%s) under %s", p.pid, ss.redact(short(strings.ReplaceAll(p.cmdline, "\x00", " "))), short(strings.ReplaceAll(p.parentCmd, "\x00", " "))))
			continue
		}
		what := fmt.Sprintf("/proc %d (%s) started by %s: argv %v env %v", p.pid, ss.redact(short(strings.ReplaceAll(p.cmdline, "\x00", " "))),
			short(strings.ReplaceAll(p.parentCmd, "\x00", " ")), argvHits, envHits)
		classifyStart(rp, parent, argvHits, envHits, what)
	}
	for key, b := range sc.files {
		if hits := ss.find(string(b)); len(hits) > 0 {
			path, _, _ := strings.Cut(key, "\x00")
			what := fmt.Sprintf("file readable by others %s holds %v", path, hits)
			if w, ok := rp.opened[path]; ok && w != "tokenhelper" {
				rp.add("files others can read that tests or tools wrote (or chmod'ed) on purpose", what+", chmod'ed by "+w)
				continue
			}
			if w, ok := rp.writers[replaced(path)]; ok && w != "tokenhelper" {
				// A test made it so (e.g. to check that xrootd refuses a
				// token file others can read).
				rp.add("files others can read that tests or tools wrote (or chmod'ed) on purpose", what+", written by "+w)
				continue
			}
			rp.violations = append(rp.violations, what)
		}
	}
	for _, l := range sc.logs {
		b, _ := os.ReadFile(l)
		if hits := ss.find(string(b)); len(hits) > 0 {
			rp.add("test output (go test -v logs)", fmt.Sprintf("%s: %d secrets (scripts echo what tokenhelper printed on stdout)", filepath.Base(l), len(hits)))
		}
	}
	return rp
}

// classifyStart judges a process start whose argv or environment holds
// secrets; parent is the process that started it.
func classifyStart(rp *leakReport, parent *process, argvHits, envHits []string, what string) {
	if parent.role() != "tokenhelper" {
		rp.add("processes started by test binaries (the tests, or library code under test in-process) or by tools", what)
		return
	}
	if len(argvHits) > 0 {
		rp.violations = append(rp.violations, "argv of a process tokenhelper started: "+what)
		return
	}
	// exec --env-token sets BEARER_TOKEN for gfal2 (documented); the
	// passphrase variable a user set reaches children like every other
	// variable of theirs.
	rp.add("environment of children (BEARER_TOKEN with exec --env-token, or inherited)", what)
}

func quoteArgv(nul string) string {
	var q []string
	for _, a := range strings.Split(strings.TrimRight(nul, "\x00"), "\x00") {
		q = append(q, strconv.Quote(a))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func short(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// traceLine is one call of a strace output, unfinished calls joined to
// their resumption.
type traceLine struct {
	pid     int
	call    string
	resumed bool // the second half of an unfinished call (already judged)
}

// exited reports whether the line is strace's notice that the pid ended
// (`+++ exited with 0 +++`, `+++ killed by SIGKILL +++`, a thread's
// `+++ superseded by execve in pid N +++`): the pid may now be given to
// another thread or process.
func (l traceLine) exited() bool {
	return strings.HasPrefix(l.call, "+++ exited with ") || strings.HasPrefix(l.call, "+++ killed by ") ||
		strings.HasPrefix(l.call, "+++ superseded by execve")
}

// readTrace calls fn for every call in a strace -f output. An unfinished
// call is reported twice: on entry (its arguments are complete: writes
// and execve are judged there) and, joined, when it resumes (with its
// result: clone's child, execve's success).
//
// strace pads the pid to five columns: "123   write(1<pipe:[9]>, ..." —
// the call starts after the padding.
func readTrace(path string, fn func(traceLine)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	pending := map[int]string{}
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		pid, perr := strconv.Atoi(line[:sp])
		if perr != nil {
			continue
		}
		call := strings.TrimLeft(strings.TrimRight(line[sp+1:], "\n"), " ")
		if strings.HasPrefix(call, "<... ") {
			i := strings.Index(call, "resumed>")
			if i < 0 {
				continue
			}
			fn(traceLine{pid: pid, call: pending[pid] + call[i+len("resumed>"):], resumed: true})
			delete(pending, pid)
			continue
		}
		if strings.HasSuffix(call, "<unfinished ...>") {
			call = strings.TrimSuffix(call, "<unfinished ...>")
			pending[pid] = call
		}
		l := traceLine{pid: pid, call: call}
		if l.exited() {
			delete(pending, pid) // a call cut short by the end never resumes
		}
		fn(l)
	}
}

// cloneResult is the child of a finished clone/fork call (0: none).
func cloneResult(call string) int {
	if !strings.HasPrefix(call, "clone") && !strings.HasPrefix(call, "fork") && !strings.HasPrefix(call, "vfork") {
		return 0
	}
	i := strings.LastIndex(call, "= ")
	if i < 0 {
		return 0
	}
	f := strings.Fields(call[i+2:])
	if len(f) == 0 {
		return 0
	}
	child, err := strconv.Atoi(f[0])
	if err != nil || child <= 0 {
		return 0
	}
	return child
}

// analyzeTrace reads one strace output: it follows processes and threads
// (clone), records execve's argv and environment, and judges every write
// that holds a secret by who wrote it where.
func analyzeTrace(t *testing.T, path string, ss secretSet, rp *leakReport) {
	if rp.writers == nil {
		rp.writers = map[string]string{}
	}
	if rp.opened == nil {
		rp.opened = map[string]string{}
	}
	// A pid is one thread or process from its creation to strace's exit
	// line, then maybe another one: its lives are numbered in the order
	// of the exit lines.
	type life struct{ pid, n int }
	// Pass 1: who created whom, per life. A thread's first calls can be
	// printed before the clone that created it returns in its parent, so
	// creation is looked up ahead of time.
	type birth struct {
		parent int
		thread bool
	}
	births := map[life]birth{}
	lives := map[int]int{}
	err := readTrace(path, func(l traceLine) {
		if l.exited() {
			lives[l.pid]++
			return
		}
		if child := cloneResult(l.call); child > 0 {
			births[life{child, lives[child]}] = birth{parent: l.pid, thread: strings.Contains(l.call, "CLONE_THREAD")}
		}
	})
	if err != nil {
		t.Errorf("trace %s: %v", path, err)
		return
	}
	// Pass 2: in order, with each pid's process as it is at that point.
	clear(lives)
	procs := map[int]*process{}
	var get func(pid int) *process
	get = func(pid int) *process {
		if p, ok := procs[pid]; ok {
			return p
		}
		var p *process
		b, ok := births[life{pid, lives[pid]}]
		switch {
		case ok && b.parent != pid && b.thread:
			p = get(b.parent)
		case ok && b.parent != pid:
			parent := get(b.parent)
			p = &process{argv: parent.argv, env: parent.env, parent: parent}
		default:
			p = &process{}
		}
		procs[pid] = p
		return p
	}
	err = readTrace(path, func(l traceLine) {
		call := l.call
		switch {
		case l.exited():
			delete(procs, l.pid)
			lives[l.pid]++
		case strings.HasPrefix(call, "execve("):
			p := get(l.pid)
			argv, env := execveArgs(call)
			if !l.resumed {
				argvHits, envHits := ss.find(argv), ss.find(env)
				if len(argvHits) == 0 && p.role() == "tokenhelper" && jwtShaped(argv) {
					argvHits = []string{"JWT-shaped string"}
				}
				if len(argvHits)+len(envHits) > 0 {
					what := fmt.Sprintf("execve %s by %s: argv %v env %v", ss.redact(short(argv)), short(p.argv), argvHits, envHits)
					classifyStart(rp, p, argvHits, envHits, what)
				}
			}
			i := strings.LastIndex(call, "= ")
			if i >= 0 && strings.HasPrefix(call[i:], "= 0") {
				// A new image: this pid is another program now.
				procs[l.pid] = &process{argv: argv, env: env, parent: p.parent}
			}
		case !l.resumed && (strings.HasPrefix(call, "chmod(") || strings.HasPrefix(call, "fchmod(") || strings.HasPrefix(call, "fchmodat(")):
			// Who opened a file to others: tests do it on purpose.
			if path, mode, ok := chmodArgs(call); ok && mode&0o044 != 0 {
				w := short(ss.redact(get(l.pid).argv))
				if get(l.pid).role() == "tokenhelper" {
					w = "tokenhelper"
				}
				rp.opened[path] = w
			}
		case !l.resumed && (strings.HasPrefix(call, "write") || strings.HasPrefix(call, "pwrite")):
			hits := ss.find(call)
			p := get(l.pid)
			fd, target := writeTarget(call)
			if len(hits) == 0 && fd == 2 && p.role() == "tokenhelper" && jwtShaped(call) {
				// Tokens the tests made themselves are not in the test
				// beds' record: any JWT on tokenhelper's stderr is one.
				hits = []string{"JWT-shaped string"}
			}
			if len(hits) == 0 {
				return
			}
			judgeWrite(rp, ss, p, fd, target, hits, call)
		}
	})
	if err != nil {
		t.Errorf("trace %s: %v", path, err)
	}
}

// chmodArgs parses the file and mode of the three calls that change a
// mode, as strace -y prints them: `chmod("/p", 0640)`,
// `fchmodat(AT_FDCWD</cwd>, "p", 0640)` or `fchmodat(7</dir>, "p",
// 0640)` (a relative path is taken from the directory strace names) and
// `fchmod(5</p>, 0640)`.
func chmodArgs(call string) (string, uint32, bool) {
	var dir, path, rest string
	switch {
	case strings.HasPrefix(call, "fchmod("):
		// fchmod(5</p>, 0640): the file is the descriptor's.
		_, target := fdTarget(call)
		if !strings.HasPrefix(target, "/") {
			return "", 0, false
		}
		path = target
		i := strings.Index(call, ">, ")
		if i < 0 {
			return "", 0, false
		}
		rest = call[i+len(">, "):]
	default:
		if strings.HasPrefix(call, "fchmodat(") {
			_, dir = fdTarget(call)
		}
		i := strings.IndexByte(call, '"')
		if i < 0 {
			return "", 0, false
		}
		j := strings.IndexByte(call[i+1:], '"')
		if j < 0 {
			return "", 0, false
		}
		path = call[i+1 : i+1+j]
		rest = call[i+1+j+1:]
		if !filepath.IsAbs(path) {
			if !filepath.IsAbs(dir) {
				return "", 0, false // relative to a directory strace could not name
			}
			path = filepath.Join(dir, path)
		}
	}
	f := strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ')' || r == ' ' })
	if len(f) == 0 {
		return "", 0, false
	}
	m, err := strconv.ParseUint(f[0], 8, 32)
	return filepath.Clean(path), uint32(m), err == nil
}

// execveArgs extracts argv and envp from `execve("p", [argv], [envp]...`.
func execveArgs(call string) (argv, env string) {
	i := strings.Index(call, ", [")
	if i < 0 {
		return "", ""
	}
	rest := call[i+2:]
	j := closing(rest)
	argv = rest[:j+1]
	rest = rest[j+1:]
	if k := strings.Index(rest, ", ["); k >= 0 {
		e := rest[k+2:]
		env = e[:closing(e)+1]
	}
	return argv, env
}

// closing finds the ] that closes the [ at s[0], skipping quoted strings.
func closing(s string) int {
	inq := false
	for i := 1; i < len(s); i++ {
		switch {
		case inq && s[i] == '\\':
			i++
		case s[i] == '"':
			inq = !inq
		case !inq && s[i] == ']':
			return i
		}
	}
	return len(s) - 1
}

// writeTarget parses `write(2<pipe:[123]>, ...` into 2 and "pipe:[123]".
func writeTarget(call string) (int, string) {
	return fdTarget(call)
}

// fdTarget parses the first argument of a call on a descriptor, as
// strace -y prints it: `call(2<pipe:[123]>, ...` gives 2 and
// "pipe:[123]", `fchmodat(AT_FDCWD</w>, ...` gives -100 and "/w".
func fdTarget(call string) (int, string) {
	i := strings.IndexByte(call, '(')
	j := strings.IndexByte(call, '<')
	if i < 0 || j < i {
		return -1, ""
	}
	fd, err := strconv.Atoi(call[i+1 : j])
	if err != nil {
		fd = -1
		if call[i+1:j] == "AT_FDCWD" {
			fd = -100
		}
	}
	k := strings.Index(call[j:], ">,")
	if k < 0 {
		return fd, ""
	}
	return fd, call[j+1 : j+k]
}

func judgeWrite(rp *leakReport, ss secretSet, p *process, fd int, target string, hits []string, call string) {
	where := fmt.Sprintf("fd %d (%s)", fd, target)
	what := fmt.Sprintf("%s by %s wrote %v: %s", where, short(ss.redact(p.argv)), hits, short(ss.redact(call)))
	isFile := strings.HasPrefix(target, "/")
	switch {
	case strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "TCP") || strings.HasPrefix(target, "UNIX"):
		rp.counts["network (requests to the provider, answers of the test bed, plugin RPC)"]++
	case isFile:
		// Token files, the cache and the state are written 0600; files
		// others can read are searched separately, knowing who wrote
		// them.
		rp.counts["files (0600 token files, cache, state; others' access checked separately)"]++
		w := short(ss.redact(p.argv))
		if p.role() == "tokenhelper" {
			w = "tokenhelper"
		}
		if rp.writers[replaced(target)] != "tokenhelper" {
			rp.writers[replaced(target)] = w
		}
	case p.role() == "tokenhelper" && p.companion():
		// tokenhelper-pluginhost and plugins answer tokenhelper on
		// their stdout (a pipe to it): the token is their answer.
		rp.counts["answers of the plugin companion and plugins to tokenhelper (stdout pipes)"]++
	case p.role() == "tokenhelper":
		switch {
		case fd == 2:
			rp.violations = append(rp.violations, "stderr of tokenhelper: "+what)
		case fd == 1 && slices.Contains(tokenOnStdout, p.subcommand()):
			rp.counts["stdout of commands whose output is the token ("+strings.Join(tokenOnStdout, ", ")+")"]++
		case fd == 1:
			rp.violations = append(rp.violations, "stdout of tokenhelper "+p.subcommand()+": "+what)
		default:
			// A pipe to a child: curl's -K - configuration, a plugin's
			// stdin.
			rp.add("pipes from tokenhelper to its children (curl -K -, plugins)", what)
		}
	case p.role() == "test":
		rp.counts["test binaries' own output (go test -v, testscript logs of tokenhelper's stdout)"]++
	default:
		rp.add("other programs' output (tests' shell snippets, curl, git, oidc-agent)", what)
	}
}

func (rp *leakReport) markdown(suites, secrets int, sc *scan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d suites run under strace with TOKENHELPER_VERBOSE=2; %d secrets issued by their test beds; %d /proc polls, %d process snapshots; %d files others could read.\n\n",
		suites, secrets, sc.polls, len(sc.procs), len(sc.files))
	b.WriteString("| suite | outcome | time |\n|---|---|---|\n")
	var incomplete, untraced []string
	for _, r := range sc.results {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.name, r.outcome(), r.took)
		switch {
		case !r.complete:
			incomplete = append(incomplete, r.name+" ("+filepath.Base(r.log)+")")
		case !r.traced:
			untraced = append(untraced, r.name)
		}
	}
	if len(incomplete) > 0 {
		fmt.Fprintf(&b, "\n**Scan incomplete: %s not run to completion, under strace or without it: %s.** "+
			"What their tests did not reach was not scanned; the counts below hold for what ran.\n",
			map[bool]string{true: "1 suite did", false: strconv.Itoa(len(incomplete)) + " suites did"}[len(incomplete) == 1], strings.Join(incomplete, ", "))
	}
	if len(untraced) > 0 {
		fmt.Fprintf(&b, "\nRan to completion only without strace (argv, environments, files and output scanned; writes not attributed to processes): %s.\n",
			strings.Join(untraced, ", "))
	}
	fmt.Fprintf(&b, "\n**Leaks: %d.**\n\n", len(rp.violations))
	for _, v := range rp.violations {
		b.WriteString("- " + v + "\n")
	}
	b.WriteString("\nSecrets seen where they belong (counts):\n\n")
	keys := make([]string, 0, len(rp.counts))
	for k := range rp.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %d\n", k, rp.counts[k])
		for _, f := range rp.reviewed[k] {
			fmt.Fprintf(&b, "  - %s\n", strings.ReplaceAll(f, "\n", " "))
		}
	}
	return b.String()
}
