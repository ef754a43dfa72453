package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// EnvDayScale divides the simulated day: 60 (the default) makes a 1 h
// token last 60 s and the day 24 minutes.
const EnvDayScale = "TOKENHELPER_BENCH_DAY_SCALE"

// Burst is the outcome of N processes asking at once.
type Burst struct {
	Processes    int
	Refreshes    int // refresh grants at the provider
	TokenCalls   int // requests to the token endpoint
	AllRequests  int // requests to any provider endpoint
	Failures     int
	DistinctToks int
	Latency      Stats // from the release of the barrier to each exit
	BlockedAtGo  int   // processes waiting on the barrier at release
	Warm         bool  // the cache held a valid token
}

// burst starts n `tokenhelper token -p tb` behind a barrier (sh blocked
// reading one line from a shared pipe, then exec'ing tokenhelper), waits
// until they all wait on it, releases them with one write of n newlines
// and times each from that write to its exit.
func burst(t *testing.T, r *rig.Rig, n int) Burst {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	errs := make([]bytes.Buffer, n)
	for i := range n {
		c := r.Program(context.Background(), "sh", "-c", `read x; exec "$0" token -p tb`, r.Tokenhelper)
		c.Stdin, c.Stdout, c.Stderr = pr, &outs[i], &errs[i]
		if err := c.Start(); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		cmds[i] = c
	}
	pr.Close()
	blocked := waitBlocked(cmds, 2*time.Minute)
	ends := make([]time.Duration, n)
	results := make([]rig.Result, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	if _, err := pw.Write(bytes.Repeat([]byte("\n"), n)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Wait() // the exit status is read from ProcessState
			ends[i] = time.Since(t0)
			rig.Finish(&results[i], c.ProcessState)
		}()
	}
	wg.Wait()
	b := Burst{Processes: n, BlockedAtGo: blocked}
	toks := map[string]bool{}
	for i, res := range results {
		if res.Code != 0 || outs[i].Len() == 0 {
			b.Failures++
			if b.Failures == 1 {
				b.Latency.FirstFailure = fmt.Sprintf("exit %d: %s", res.Code, strings.TrimSpace(errs[i].String()))
			}
			continue
		}
		toks[outs[i].String()] = true
	}
	b.DistinctToks = len(toks)
	fail, first := b.Failures, b.Latency.FirstFailure
	b.Latency = Summarize(ends)
	b.Latency.Failures, b.Latency.FirstFailure = fail, first
	c := r.TB.Counters()
	b.Refreshes = c.Grant(testbed.GrantRefreshToken)
	b.TokenCalls = c.Endpoint(testbed.EndpointToken)
	for _, v := range c.Requests {
		b.AllRequests += v
	}
	return b
}

// waitBlocked waits until every process sleeps in a pipe read (the
// barrier) and returns how many do.
func waitBlocked(cmds []*exec.Cmd, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		n := 0
		for _, c := range cmds {
			if w, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", c.Process.Pid)); err == nil && bytes.Contains(w, []byte("pipe_read")) {
				n++
			}
		}
		if n == len(cmds) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond) // polling /proc: there is nothing to wait on
	}
}

// repeats of each burst: the machine's load makes single runs noisy.
const repeats = 3

func benchConcurrent(t *testing.T, r *rig.Rig, rep *report) {
	type level struct {
		n    int
		warm bool
	}
	var rows [][]string
	var all []Burst
	for _, l := range []level{{10, false}, {100, false}, {500, false}, {100, true}, {500, true}} {
		var refreshes, p50s, p99s []string
		var failures int
		for range repeats {
			if l.warm {
				r.Run1("", "token", "-p", rig.Profile) // a valid token in the cache
			} else {
				r.ExpireCache()
			}
			r.TB.ResetCounters()
			b := burst(t, r, l.n)
			b.Warm = l.warm
			all = append(all, b)
			want := 1
			if l.warm {
				want = 0
			}
			if b.Failures > 0 || b.Refreshes != want || b.DistinctToks != 1 {
				t.Errorf("%d processes (warm %v): %d failed (%s), %d refreshes (want %d), %d distinct tokens",
					l.n, l.warm, b.Failures, b.Latency.FirstFailure, b.Refreshes, want, b.DistinctToks)
			}
			failures += b.Failures
			refreshes = append(refreshes, strconv.Itoa(b.Refreshes))
			p50s = append(p50s, fmt.Sprintf("%.0f", float64(b.Latency.Median)/float64(time.Millisecond)))
			p99s = append(p99s, fmt.Sprintf("%.0f", float64(b.Latency.P99)/float64(time.Millisecond)))
		}
		name := strconv.Itoa(l.n)
		if l.warm {
			name += " (valid cache: no refresh)"
		}
		rows = append(rows, []string{name, strings.Join(refreshes, ", "), strconv.Itoa(failures), strings.Join(p50s, ", "), strings.Join(p99s, ", ")})
	}
	rep.put("concurrent", all)
	rep.printf("### N processes at once (`tokenhelper token -p tb`, released together from a barrier), %d runs each\n\n", repeats)
	rep.table([]string{"processes", "refreshes at the provider (each run)", "failures", "p50 ms (each run)", "p99 ms (each run)"}, rows)
}

// ---- a day of a batch node

// Day is the outcome of the simulated day.
type Day struct {
	Scale           int
	Lifetime        time.Duration // access-token lifetime (scaled)
	Length          time.Duration // the day (scaled)
	MinValid        time.Duration
	Jobs            int
	Failures        int
	Refreshes       int
	AllRequests     int
	PerEndpoint     map[testbed.Endpoint]int
	Minimum         int // ceil(day / lifetime)
	OnDemandOptimum int // fewest refreshes for these job times with this min-valid
	Latency         Stats
}

func benchDay(t *testing.T, r *rig.Rig, rep *report) {
	scale := 60
	if v := os.Getenv(EnvDayScale); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3600 {
			t.Fatalf("%s=%q: want a number from 1 to 3600", EnvDayScale, v)
		}
		scale = n
	}
	d := Day{Scale: scale, Jobs: 1000}
	d.Lifetime = time.Hour / time.Duration(scale)
	d.Length = 24 * time.Hour / time.Duration(scale)
	d.MinValid = time.Minute / time.Duration(scale) // tokenhelper's default, scaled
	old := r.TB.Lifetimes()
	l := old
	l.Access = d.Lifetime
	r.TB.SetLifetimes(l)
	defer r.TB.SetLifetimes(old)
	r.ClearCache()
	r.TB.ResetCounters()

	rng := rand.New(rand.NewPCG(20261122, 1))
	at := make([]time.Duration, d.Jobs)
	for i := range at {
		at[i] = time.Duration(rng.Int64N(int64(d.Length)))
	}
	slices.Sort(at)
	t.Logf("simulated day: %d jobs over %s, tokens of %s, min-valid %s", d.Jobs, d.Length, d.Lifetime, d.MinValid)

	walls := make([]time.Duration, d.Jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstFail string
	start := time.Now()
	for i, off := range at {
		time.Sleep(time.Until(start.Add(off))) // the job schedule, not a synchronization
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := r.Run(r.Command(context.Background(), "token", "-p", rig.Profile, "--min-valid", d.MinValid.String()), "")
			walls[i] = res.Wall
			if res.Code != 0 {
				mu.Lock()
				d.Failures++
				if firstFail == "" {
					firstFail = fmt.Sprintf("job %d: exit %d: %s", i, res.Code, strings.TrimSpace(res.Stderr))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c := r.TB.Counters()
	d.PerEndpoint = c.Requests
	for _, v := range c.Requests {
		d.AllRequests += v
	}
	d.Refreshes = c.Grant(testbed.GrantRefreshToken)
	d.Minimum = int(math.Ceil(float64(d.Length) / float64(d.Lifetime)))
	valid := time.Duration(-1)
	for _, off := range at {
		if off+d.MinValid >= valid {
			d.OnDemandOptimum++
			valid = off + d.Lifetime
		}
	}
	d.Latency = Summarize(walls)
	d.Latency.Failures, d.Latency.FirstFailure = d.Failures, firstFail
	rep.put("day", d)
	if d.Failures > 0 {
		t.Errorf("%d of %d jobs failed; first: %s", d.Failures, d.Jobs, firstFail)
	}
	over := float64(d.AllRequests)/float64(d.Minimum) - 1
	if over > 0.10 {
		t.Errorf("%d requests at the provider, %.0f %% over the minimum %d (target: 10 %%)", d.AllRequests, 100*over, d.Minimum)
	}
	rep.printf("### A simulated day of a batch node\n\n%d job starts at random times (uniform, fixed seed) over a day, each running "+
		"`tokenhelper token -p tb --min-valid %s`; access tokens live 1 h. Time is scaled 1:%d (the test bed issues %s tokens, the day lasts %s, "+
		"min-valid 1 m becomes %s).\n\n", d.Jobs, d.MinValid, scale, d.Lifetime, d.Length, d.MinValid)
	rep.table([]string{"requests at the provider", "of which refreshes", "minimum (day ÷ lifetime)", "over the minimum", "fewest possible for these jobs (refresh on demand, min-valid)", "failed jobs", "job p50", "job p99"},
		[][]string{{strconv.Itoa(d.AllRequests), strconv.Itoa(d.Refreshes), strconv.Itoa(d.Minimum), fmt.Sprintf("%+.1f %%", 100*over),
			strconv.Itoa(d.OnDemandOptimum), strconv.Itoa(d.Failures), ms(d.Latency.Median), ms(d.Latency.P99)}})
}
