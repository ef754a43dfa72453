package reliability

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
)

// EnvReliability gates the campaign: it takes many minutes.
const EnvReliability = "TOKENHELPER_RELIABILITY"

// EnvOut names the directory for the campaign's reports (markdown tables
// for docs/reliability.md, the leak scan's evidence); unset, a temporary
// directory that is kept and logged.
const EnvOut = "TOKENHELPER_RELIABILITY_OUT"

func TestMain(m *testing.M) {
	// The test bed's OpenID library logs every route it registers.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(rig.Main(m))
}

func gate(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvReliability) != "1" {
		t.Skipf("reliability campaign: set %s=1 (make reliability runs it)", EnvReliability)
	}
}

var outDir struct {
	once sync.Once
	dir  string
	err  error
}

// out returns the report directory.
func out(t *testing.T) string {
	t.Helper()
	outDir.once.Do(func() {
		outDir.dir = os.Getenv(EnvOut)
		if outDir.dir == "" {
			outDir.dir, outDir.err = os.MkdirTemp("", "tokenhelper-reliability-")
			return
		}
		outDir.err = os.MkdirAll(outDir.dir, 0o755)
	})
	if outDir.err != nil {
		t.Fatal(outDir.err)
	}
	return outDir.dir
}

// writeReport saves a markdown report in the report directory and logs it.
func writeReport(t *testing.T, name, md string) {
	t.Helper()
	p := filepath.Join(out(t), name)
	if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("%s:\n%s", p, md)
}

// table renders a markdown table.
func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|" + strings.Repeat("---|", len(header)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}
