package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli"
	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

func TestMain(m *testing.M) {
	// The test bed's OpenID library logs every route it registers.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(rig.Main(m))
}

// agentProfile serves tokens from the oidc-agent account the rig creates.
const agentProfile = `
[profiles.agent]
account = "tb"
`

// TestPeers is the whole comparison, in one run on one test bed: the
// subtests share the logged-in native profile and the oidc-agent.
func TestPeers(t *testing.T) {
	gate(t)
	for _, tool := range [][2]string{{"hyperfine", "hyperfine"}, {"git", "git"}, {"curl", "curl"}, {"oidc-agent", "oidc-agent-cli"}} {
		rig.NeedTool(t, tool[0], tool[1])
	}
	rep := newReport(t)
	m := machine()
	r := rig.New(t, rig.Options{TOML: agentProfile})
	r.Login()
	agent := r.StartAgent()

	e := setupPeers(t, r)
	mem := map[string]int64{} // peak RSS per command, KiB
	t.Run("warm", func(t *testing.T) { benchWarm(t, r, e, rep) })
	t.Run("git", func(t *testing.T) { benchGit(t, r, e, rep) })
	t.Run("refresh", func(t *testing.T) { benchRefresh(t, r, rep, mem) })
	t.Run("memory", func(t *testing.T) { benchMemory(t, r, e, rep, agent, mem) })
	t.Run("concurrent", func(t *testing.T) { benchConcurrent(t, r, rep) })
	t.Run("day", func(t *testing.T) { benchDay(t, r, rep) })

	m.LoadAfter = loadavg()
	rep.put("machine", m)
	var tools []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m.Tools {
			if !yield(k) {
				return
			}
		}
	}) {
		tools = append(tools, m.Tools[k])
	}
	rep.printf("Machine: %d × %s, Linux %s, %s; %s. Load average %s before, %s after. %s.\n",
		m.CPUs, m.Model, m.Kernel, m.Go, strings.Join(tools, ", "), m.LoadBefore, m.LoadAfter, m.Date)
	rep.write(t)
}

// peers is what the comparisons share: files and binaries.
type peers struct {
	tokFile             string // the warm token, 0600
	minimal, cgo, floor string // comparison binaries
	store               string // git-credential-store's file
	reqTH, reqStore     string // git credential requests
}

func setupPeers(t *testing.T, r *rig.Rig) peers {
	res := r.Run1("", "token", "-p", rig.Profile)
	if res.Code != 0 {
		t.Fatalf("token: %d %s", res.Code, res.Stderr)
	}
	e := peers{tokFile: r.WriteFile("bt_token", res.Stdout), minimal: buildMinimal(t, r), cgo: buildCgo(t, r), floor: buildFloor(t, r)}
	// Warm the agent's cache, and check each command works and gives the
	// same token where it should.
	for _, c := range []struct {
		args []string
		same bool // prints the native profile's cached token
	}{
		{[]string{"oidc-token", "tb"}, false},
		{[]string{r.Tokenhelper, "token", "-p", "agent"}, false},
		{[]string{e.minimal, e.tokFile}, true},
		{[]string{e.cgo, "token", "-p", "tb"}, true},
		{[]string{e.floor, "tb"}, true},
	} {
		out := r.Run(r.Program(context.Background(), c.args[0], c.args[1:]...), "")
		if out.Code != 0 || !strings.HasPrefix(out.Stdout, "eyJ") || (c.same && out.Stdout != res.Stdout) {
			t.Fatalf("%s: exit %d (same token: %v): %s", strings.Join(c.args, " "), out.Code, out.Stdout == res.Stdout, out.Stderr)
		}
	}

	// git: credential-store for git.example.org, tokenhelper for the
	// storage (the rig's .gitconfig).
	e.store = r.WriteFile("git-credentials", "https://oauth2:not-a-token@git.example.org\n")
	f, err := os.OpenFile(filepath.Join(r.Home, ".gitconfig"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[credential \"https://git.example.org\"]\n\thelper =\n\thelper = store --file=%s\n", e.store)
	f.Close()
	host := strings.TrimPrefix(r.TB.StorageOrigin(), "https://")
	e.reqTH = r.WriteFile("req-tokenhelper", "protocol=https\nhost="+host+"\n\n")
	e.reqStore = r.WriteFile("req-store", "protocol=https\nhost=git.example.org\n\n")
	for _, c := range []struct{ req, want string }{{e.reqTH, "password=" + strings.TrimSpace(res.Stdout)}, {e.reqStore, "password=not-a-token"}} {
		in, _ := os.ReadFile(c.req)
		out := r.Run(r.Program(context.Background(), "git", "credential", "fill"), string(in))
		if out.Code != 0 || !strings.Contains(out.Stdout, c.want) {
			t.Fatalf("git credential fill < %s: exit %d, wrong password: %s", c.req, out.Code, out.Stderr)
		}
	}
	return e
}

// ---- warm path

func benchWarm(t *testing.T, r *rig.Rig, e peers, rep *report) {
	th := r.Tokenhelper
	cmds := []hfCommand{
		{"cat token-file", "cat " + e.tokFile},
		{"minimal Go binary (reads the file)", e.minimal + " " + e.tokFile},
		{"oidc-token tb (agent's cache)", "oidc-token tb"},
		{"tokenhelper token -p tb (warm cache)", th + " token -p tb"},
		{"same, built with CGO_ENABLED=1 (dynamic, BUILD_CGO=1)", e.cgo + " token -p tb"},
		{"Go binary doing only the warm path (config + cache)", e.floor + " tb"},
		{"tokenhelper version", th + " version"},
		{"tokenhelper token -p agent (asks oidc-agent)", th + " token -p agent"},
	}
	out := hyperfine(t, r, rep, "warm", false, 30, 400, cmds)
	rep.put("warm", out)
	rep.printf("### Warm path: a valid token is at hand\n\n")
	rep.table([]string{"command", "median", "min", "mean ± σ", "p90", "× oidc-token", "× cat", "× minimal Go"}, hfRows(cmds, out, 2, 0, 1))

	// Where tokenhelper's start-up goes: process start and Go runtime
	// (the minimal binary), package initialization (inittrace), the work
	// of the command itself (cli.Main in-process, no process start).
	inits, top, jwt := initTrace(t, r, 40)
	inproc := inProcess(t, r)
	rep.put("warm_breakdown", map[string]any{"init_median": inits, "init_top": top, "jwt_init": jwt, "main_in_process": inproc})
	thMed, minMed := sec(out[3].Median), sec(out[1].Median)
	rep.printf("Start-up of `tokenhelper token -p tb` (median %s): the minimal Go binary (exec, runtime start, "+
		"read a file) takes %s; package initialization (GODEBUG=inittrace=1, sum of init clock times, median of 40 runs) %s, "+
		"largest: %s; the command's own work (cli.Main in-process on the warm cache: config, cobra, cache read) %s; "+
		"the rest, %s, is loading a larger binary (page faults, runtime threads). "+
		"github.com/golang-jwt/jwt/v5's init: median %s, p90 %s, max %s over the runs.\n\n",
		ms(thMed), ms(minMed), ms(inits), strings.Join(top, ", "), ms(inproc), ms(thMed-minMed-inits-inproc),
		ms(jwt.Median), ms(jwt.P90), ms(jwt.Max))
}

// writeFiles creates dir and writes files (name → content) in it.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// buildCgo builds tokenhelper as make build does, but with
// CGO_ENABLED=1 (BUILD_CGO=1, go build's default where a C compiler is
// present): net linked through the C library, so every start goes
// through the dynamic loader and the cgo runtime.
func buildCgo(t *testing.T, r *rig.Rig) string {
	root, err := rig.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(r.Dir, "cgo", "tokenhelper")
	c := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/tokenhelper")
	c.Dir = root
	c.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build with cgo: %v\n%s", err, b)
	}
	return out
}

// floorSource is the warm path and nothing else: resolve directories,
// load the configuration, select the profile, read the cache entry.
const floorSource = `package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func main() {
	dirs, err := config.ResolveDirs(os.Getenv)
	if err != nil {
		os.Exit(3)
	}
	cfg, err := config.LoadOptions{Path: dirs.ConfigFile, UID: os.Geteuid()}.Load()
	if err != nil {
		os.Exit(3)
	}
	dirs = dirs.WithConfig(cfg)
	p, err := cfg.Select(os.Args[1], "")
	if err != nil || p == nil {
		os.Exit(10)
	}
	req := helper.Request{Profile: p.Name, Scopes: p.Scopes, Audiences: p.Audiences, MinValid: time.Minute}.Normalized()
	c := &cache.Cache{Dir: filepath.Join(dirs.CacheDir, "tokens")}
	tok, err := c.Get(context.Background(), req, func(context.Context) (*helper.Token, error) { return nil, errors.New("miss") })
	if err != nil {
		os.Exit(5)
	}
	fmt.Println(tok.AccessToken)
}
`

// buildFloor builds floorSource against the module under test: what the
// warm path would cost in a binary that links nothing else.
func buildFloor(t *testing.T, r *rig.Rig) string {
	root, err := rig.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(r.Dir, "floor")
	mod := "module floor\n\ngo 1.26\n\nrequire github.com/tokenhelper/tokenhelper v0.0.0\n\nreplace github.com/tokenhelper/tokenhelper => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"main.go": floorSource, "go.mod": mod, "go.sum": string(sum)})
	out := filepath.Join(dir, "floor")
	c := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	c.Dir = dir
	c.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off", "CGO_ENABLED=0") // linked as make build links tokenhelper
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build floor: %v\n%s", err, b)
	}
	return out
}

// buildMinimal builds the floor of any Go tool: a main that prints a file.
func buildMinimal(t *testing.T, r *rig.Rig) string {
	dir := filepath.Join(r.Dir, "minimal")
	src := "package main\n\nimport \"os\"\n\nfunc main() { b, _ := os.ReadFile(os.Args[1]); os.Stdout.Write(b) }\n"
	writeFiles(t, dir, map[string]string{"main.go": src, "go.mod": "module minimal\n\ngo 1.26\n"})
	out := filepath.Join(dir, "minimal")
	c := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	c.Dir = dir
	c.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build minimal: %v\n%s", err, b)
	}
	return out
}

// initTrace runs `tokenhelper token -p tb` n times with
// GODEBUG=inittrace=1 and returns the median sum of init clock times, the
// five largest initializers (by median) and golang-jwt's init times.
func initTrace(t *testing.T, r *rig.Rig, n int) (time.Duration, []string, Stats) {
	var sums []time.Duration
	per := map[string][]time.Duration{}
	for range n {
		c := r.Command(context.Background(), "token", "-p", rig.Profile)
		c.Env = append(c.Env, "GODEBUG=inittrace=1")
		res := r.Run(c, "")
		if res.Code != 0 {
			t.Fatalf("token: %s", res.Stderr)
		}
		var sum time.Duration
		sc := bufio.NewScanner(strings.NewReader(res.Stderr))
		for sc.Scan() {
			// init PKG @T ms, C ms clock, B bytes, A allocs
			f := strings.Fields(sc.Text())
			if len(f) < 6 || f[0] != "init" || f[5] != "ms" {
				continue
			}
			v, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				continue
			}
			d := time.Duration(v * float64(time.Millisecond))
			sum += d
			per[f[1]] = append(per[f[1]], d)
		}
		sums = append(sums, sum)
	}
	type pkg struct {
		name string
		med  time.Duration
	}
	var pkgs []pkg
	for name, d := range per {
		slices.Sort(d)
		pkgs = append(pkgs, pkg{name, median(d)})
	}
	slices.SortFunc(pkgs, func(a, b pkg) int { return int(b.med - a.med) })
	var top []string
	for _, p := range pkgs[:min(5, len(pkgs))] {
		top = append(top, fmt.Sprintf("%s %s", p.name, ms(p.med)))
	}
	slices.Sort(sums)
	return median(sums), top, Summarize(per["github.com/golang-jwt/jwt/v5"])
}

// inProcess times cli.Main for `token -p tb` inside this process, on the
// rig's warm cache: the command's own work without process start.
func inProcess(t *testing.T, r *rig.Rig) time.Duration {
	env := map[string]string{}
	for _, kv := range r.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	sys := &cli.System{
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Environ:   func() []string { return r.Env() }, Now: time.Now, UID: os.Geteuid(), TmpDir: r.Dir, Location: time.UTC,
	}
	var failed int
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if cli.Main(context.Background(), []string{"tokenhelper", "token", "-p", rig.Profile}, sys) != 0 {
				failed++
			}
		}
	})
	if failed > 0 {
		t.Fatalf("cli.Main failed %d times", failed)
	}
	return time.Duration(res.NsPerOp())
}

// ---- git

func benchGit(t *testing.T, r *rig.Rig, e peers, rep *report) {
	reqStore, reqTH, store := e.reqStore, e.reqTH, e.store
	cmds := []hfCommand{
		{"git credential fill → git-credential-store", "git credential fill < " + reqStore},
		{"git credential fill → tokenhelper", "git credential fill < " + reqTH},
		{"git credential-store get", "git credential-store --file=" + store + " get < " + reqStore},
		{"git-credential-tokenhelper get", filepath.Join(r.Bin, "git-credential-tokenhelper") + " get < " + reqTH},
	}
	out := hyperfine(t, r, rep, "git", true, 20, 300, cmds)
	rep.put("git", out)
	rep.printf("### git credential helper\n\n")
	rep.table([]string{"command", "median", "min", "mean ± σ", "p90", "× credential-store (fill)", "× credential-store get"}, hfRows(cmds, out, 0, 2))
}

// ---- refresh

func benchRefresh(t *testing.T, r *rig.Rig, rep *report, mem map[string]int64) {
	const warm, rounds = 5, 60
	spec, err := r.TB.RegisterClient(testbed.ClientSpec{Name: "curl", Grants: []string{"refresh"}})
	if err != nil {
		t.Fatal(err)
	}
	// tokenhelper trusts the system's CAs plus the profile's ca_file.
	// curl runs twice: trusting the test bed's CA only (the bare POST),
	// and trusting Debian's bundle plus that CA, as curl would against a
	// real IAM (OpenSSL then parses the whole bundle, as Go does).
	system, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	ca, _ := os.ReadFile(r.TB.CAFile)
	bundle := r.WriteFile("bundle.pem", string(system)+string(ca))
	curlCmd := func(cacert string) (*exec.Cmd, string) {
		rt, err := r.TB.RefreshTokenFor("alice", spec.ID, r.Scopes)
		if err != nil {
			t.Fatal(err)
		}
		// Secrets on stdin (-K -), never in argv.
		cfg := fmt.Sprintf("url = %q\ncacert = %q\nuser = \"%s:%s\"\ndata = \"grant_type=refresh_token\"\ndata-urlencode = \"refresh_token=%s\"\nsilent\nshow-error\nfail\n",
			r.TB.TokenURL(), cacert, spec.ID, spec.Secret, rt)
		return r.Program(context.Background(), "curl", "-K", "-"), cfg
	}
	names := []string{
		"curl -K -: POST grant_type=refresh_token (trusts the test CA only)",
		"curl -K -: the same, trusting Debian's CA bundle + the test CA",
		"tokenhelper token -p tb --force (plaintext profile)",
	}
	run := func(i int, peak bool) rig.Result {
		var c *exec.Cmd
		stdin := ""
		switch i {
		case 0:
			c, stdin = curlCmd(r.TB.CAFile)
		case 1:
			c, stdin = curlCmd(bundle)
		default:
			c = r.Command(context.Background(), "token", "-p", rig.Profile, "--force")
		}
		var res rig.Result
		if peak {
			res = r.RunPeak(c, stdin)
		} else {
			res = r.Run(c, stdin)
		}
		if res.Code != 0 || (i < 2 && !strings.Contains(res.Stdout, `"refresh_token"`)) {
			t.Fatalf("%s: exit %d: %s", names[i], res.Code, res.Stderr)
		}
		return res
	}
	walls := make([][]time.Duration, len(names))
	r.TB.ResetCounters()
	for round := range warm + rounds {
		for j := range names { // rotate who goes first
			i := (round + j) % len(names)
			res := run(i, false)
			if round >= warm {
				walls[i] = append(walls[i], res.Wall)
			}
		}
	}
	if n := r.TB.Counters().Grant(testbed.GrantRefreshToken); n != len(names)*(warm+rounds) {
		t.Errorf("%d refreshes at the provider, want %d", n, len(names)*(warm+rounds))
	}
	for i, name := range names {
		for range 5 {
			mem[name] = max(mem[name], run(i, true).MaxRSSKiB)
		}
	}

	// The same with an encrypted profile: the passphrase from the
	// environment, so every refresh runs scrypt (N = 2^18) to unlock.
	enc := rig.New(t, rig.Options{Encrypted: true})
	enc.Login()
	encName := "tokenhelper token -p tb --force (encrypted profile, passphrase_env: scrypt each time)"
	var encD []time.Duration
	for i := range 12 {
		res := enc.Run(enc.Command(context.Background(), "token", "-p", rig.Profile, "--force"), "")
		if res.Code != 0 {
			t.Fatalf("encrypted refresh: %s", res.Stderr)
		}
		if i >= 2 {
			encD = append(encD, res.Wall)
		}
	}
	for range 3 {
		res := enc.RunPeak(enc.Command(context.Background(), "token", "-p", rig.Profile, "--force"), "")
		mem[encName] = max(mem[encName], res.MaxRSSKiB)
	}

	stats := map[string]Stats{}
	var rows [][]string
	base := Summarize(walls[0])
	for i, name := range names {
		s := Summarize(walls[i])
		stats[name] = s
		rows = append(rows, []string{name, ms(s.Median), ms(s.Min), ms(s.P90), ratio(s.Median, base.Median)})
	}
	es := Summarize(encD)
	stats[encName] = es
	rows = append(rows, []string{encName + ", 10 runs", ms(es.Median), ms(es.Min), ms(es.P90), ratio(es.Median, base.Median)})
	rep.put("refresh", stats)
	rep.printf("### A refresh at the provider (https, rotation), %d rounds interleaved\n\n", rounds)
	rep.table([]string{"command", "median", "min", "p90", "× bare curl"}, rows)
	refreshMem = append(names, encName)
}

// refreshMem lists the refresh commands whose peak memory benchRefresh
// measured, in report order.
var refreshMem []string

// ---- memory

func benchMemory(t *testing.T, r *rig.Rig, e peers, rep *report, agent *rig.Agent, mem map[string]int64) {
	tokFile, minimal := e.tokFile, e.minimal
	host := strings.TrimPrefix(r.TB.StorageOrigin(), "https://")
	cases := []struct {
		name  string
		args  []string
		stdin string
	}{
		{"cat token-file", []string{"cat", tokFile}, ""},
		{"minimal Go binary", []string{minimal, tokFile}, ""},
		{"oidc-token tb", []string{"oidc-token", "tb"}, ""},
		{"tokenhelper token -p tb (warm)", []string{r.Tokenhelper, "token", "-p", rig.Profile}, ""},
		{"tokenhelper token -p agent", []string{r.Tokenhelper, "token", "-p", "agent"}, ""},
		{"git credential fill → credential-store", []string{"git", "credential", "fill"}, "protocol=https\nhost=git.example.org\n\n"},
		{"git credential fill → tokenhelper", []string{"git", "credential", "fill"}, "protocol=https\nhost=" + host + "\n\n"},
	}
	for _, c := range cases {
		for range 10 {
			res := r.RunPeak(r.Program(context.Background(), c.args[0], c.args[1:]...), c.stdin)
			if res.Code != 0 {
				t.Fatalf("%s: exit %d: %s", c.name, res.Code, res.Stderr)
			}
			mem[c.name] = max(mem[c.name], res.MaxRSSKiB)
		}
	}
	rep.put("max_rss_kib", mem)
	rep.printf("### Peak memory (max RSS by GNU time, whose own floor is about 1 MiB; for git, the largest process of the tree)\n\n")
	var rows [][]string
	for _, c := range cases {
		rows = append(rows, []string{c.name, mib(mem[c.name])})
	}
	for _, k := range refreshMem {
		rows = append(rows, []string{k, mib(mem[k])})
	}
	if hwm := agentHWM(agent); hwm > 0 {
		rows = append(rows, []string{"oidc-agent daemon (resident all session; VmHWM)", mib(hwm)})
		rep.put("oidc_agent_vmhwm_kib", hwm)
	}
	rep.table([]string{"command", "max RSS"}, rows)
}

// agentHWM reads the peak RSS of the oidc-agent processes (the daemon
// forks once).
func agentHWM(a *rig.Agent) int64 {
	var peak int64
	for _, pid := range a.Pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				peak = max(peak, n)
			}
		}
	}
	return peak
}
