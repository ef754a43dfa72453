package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
)

// hfCommand is one command of a hyperfine comparison.
type hfCommand struct {
	Name, Command string
}

// hfResult is hyperfine's JSON export of one command (times in seconds).
type hfResult struct {
	Command string    `json:"command"`
	Mean    float64   `json:"mean"`
	Stddev  float64   `json:"stddev"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Times   []float64 `json:"times"`
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// Summary of hyperfine's individual times, with our percentile rules.
func (h hfResult) stats() Stats {
	d := make([]time.Duration, len(h.Times))
	for i, s := range h.Times {
		d[i] = sec(s)
	}
	return Summarize(d)
}

// hyperfine runs one side-by-side comparison in the rig's environment and
// returns the results in command order. shell false runs commands
// directly (-N); true runs them through sh, whose start-up hyperfine
// measures and subtracts.
func hyperfine(t *testing.T, r *rig.Rig, rep *report, name string, shell bool, warmup, runs int, cmds []hfCommand) []hfResult {
	t.Helper()
	exe := rig.NeedTool(t, "hyperfine", "hyperfine")
	export := rep.path("hyperfine-" + name + ".json")
	args := []string{"--style", "basic", "--warmup", strconv.Itoa(warmup), "--runs", strconv.Itoa(runs), "--export-json", export}
	if !shell {
		args = append(args, "-N")
	}
	for _, c := range cmds {
		args = append(args, "-n", c.Name)
	}
	for _, c := range cmds {
		args = append(args, c.Command)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = r.Env()
	cmd.Dir = r.Home
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hyperfine %s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []hfResult `json:"results"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Results) != len(cmds) {
		t.Fatalf("hyperfine export %s: %v (%d results)", export, err, len(doc.Results))
	}
	return doc.Results
}

// hfRows is a markdown table of a comparison, ratios against base (an
// index into cmds; -1: none).
func hfRows(cmds []hfCommand, res []hfResult, bases ...int) [][]string {
	var rows [][]string
	for i, c := range cmds {
		s := res[i].stats()
		row := []string{c.Name, ms(sec(res[i].Median)), ms(s.Min), fmt.Sprintf("%s ± %.2f", ms(sec(res[i].Mean)), res[i].Stddev*1000), ms(s.P90)}
		for _, b := range bases {
			row = append(row, ratio(sec(res[i].Median), sec(res[b].Median)))
		}
		rows = append(rows, row)
	}
	return rows
}
