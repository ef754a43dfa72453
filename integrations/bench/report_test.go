package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvBench gates the measurements: they take many minutes and need
// hyperfine, git, curl and oidc-agent-cli.
const EnvBench = "TOKENHELPER_BENCH"

// EnvOut names the directory for report.md, results.json and hyperfine's
// exports; unset, a new temporary directory (kept, and logged).
const EnvOut = "TOKENHELPER_BENCH_OUT"

func gate(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvBench) != "1" {
		t.Skipf("measurements: set %s=1 (make bench runs them)", EnvBench)
	}
}

// report collects the results of one run as markdown and JSON.
type report struct {
	mu   sync.Mutex
	dir  string
	md   strings.Builder
	data map[string]any
}

func newReport(t *testing.T) *report {
	t.Helper()
	dir := os.Getenv(EnvOut)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tokenhelper-bench-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("results in %s", dir)
	return &report{dir: dir, data: map[string]any{}}
}

func (r *report) path(name string) string { return filepath.Join(r.dir, name) }

// printf adds markdown.
func (r *report) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.md, format, args...)
}

// put records a value in results.json.
func (r *report) put(key string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data[key] = v
}

// table adds a markdown table.
func (r *report) table(header []string, rows [][]string) {
	r.printf("| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, row := range rows {
		r.printf("| %s |\n", strings.Join(row, " | "))
	}
	r.printf("\n")
}

// write saves report.md and results.json and logs the markdown.
func (r *report) write(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.MarshalIndent(r.data, "", "  ")
	if err := os.WriteFile(r.path("results.json"), append(b, '\n'), 0o644); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(r.path("report.md"), []byte(r.md.String()), 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("report (%s):\n%s", r.path("report.md"), r.md.String())
}

// Machine describes where the numbers were taken.
type Machine struct {
	Date       string
	CPUs       int
	Model      string
	Kernel     string
	Go         string
	LoadBefore string
	LoadAfter  string `json:",omitempty"`
	Tools      map[string]string
}

func machine() Machine {
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), CPUs: runtime.NumCPU(), Go: runtime.Version(), Tools: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	m.LoadBefore = loadavg()
	for name, args := range map[string][]string{
		"hyperfine": {"hyperfine", "--version"}, "git": {"git", "--version"}, "curl": {"curl", "--version"},
		"oidc-agent": {"oidc-agent", "--version"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).Output(); err == nil {
			m.Tools[name] = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
