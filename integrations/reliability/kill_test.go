package reliability

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// EnvKillSeed fixes the campaign's random choices (default: the time).
const EnvKillSeed = "TOKENHELPER_KILL_SEED"

// killKind is a way of choosing the moment of the SIGKILL.
type killKind struct {
	name   string
	rounds int
	// strace arguments wrapping every process (nil: none): they slow the
	// writes down so that kills land in them.
	strace []string
	// window is the range of the random delay before the kill.
	window time.Duration
	// inFlight: kill every process while the refresh is held at the
	// provider (before it handled it).
	inFlight bool
}

func killKinds() []killKind {
	renames := "rename,renameat,renameat2"
	syncs := "fsync,fdatasync"
	return []killKind{
		{name: "random moment (0–80 ms after start)", rounds: 50, window: 80 * time.Millisecond},
		{name: "refresh request held at the provider", rounds: 20, inFlight: true},
		{name: "writes slowed: 150 ms before each rename", rounds: 20, window: 400 * time.Millisecond,
			strace: []string{"-e", "trace=" + renames, "-e", "inject=" + renames + ":delay_enter=150000"}},
		{name: "writes slowed: 150 ms after each rename", rounds: 15, window: 400 * time.Millisecond,
			strace: []string{"-e", "trace=" + renames, "-e", "inject=" + renames + ":delay_exit=150000"}},
		{name: "writes slowed: 80 ms in each fsync", rounds: 15, window: 500 * time.Millisecond,
			strace: []string{"-e", "trace=" + syncs, "-e", "inject=" + syncs + ":delay_enter=80000"}},
	}
}

// recoveredLine is what tokenhelper -v says when it goes on with the
// refresh token a killed write left (plugins/native).
const recoveredLine = "recovered the refresh token an interrupted write left"

// killStats counts what the rounds of a kind did.
type killStats struct {
	rounds, killed, recovered, lost, survivorsOK, litter int
}

// TestKillCampaign runs refreshes (token, exec, export: three processes
// at once on an expired cache) and SIGKILLs them at random points, many
// times. After every round the stored state must read back, the next
// refresh must work — going on, if need be, with the refresh token a
// killed write left in its temporary file — or, only when the kill fell
// after the provider rotated the refresh token and before the new one was
// on disk, fail with "session expired" (exit 4); no survivor may fail
// otherwise.
func TestKillCampaign(t *testing.T) {
	gate(t)
	straceBin := rig.NeedTool(t, "strace", "strace")
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(EnvKillSeed); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (%s=%d repeats this campaign)", seed, EnvKillSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 9))

	r := rig.New(t, rig.Options{ProfileTOML: `timeout = "10s"`})
	r.Login()
	exportFile := filepath.Join(r.RuntimeDir, "bt_export")

	var rows [][]string
	total := 0
	seenTemps := map[string]bool{}
	for _, k := range killKinds() {
		var st killStats
		for round := range k.rounds {
			total++
			name := fmt.Sprintf("%s #%d", k.name, round+1)
			rt0, err := r.StoredSecret("refresh_token")
			if err != nil || rt0 == "" {
				t.Fatalf("%s: the stored refresh token is unusable before the round: %v", name, err)
			}
			r.ExpireCache()
			r.TB.ResetCounters()
			if k.inFlight {
				if err := r.TB.Inject(testbed.EndpointToken, testbed.Delay(2*time.Second).Once().ForGrant(testbed.GrantRefreshToken)); err != nil {
					t.Fatal(err)
				}
			}
			argsets := [][]string{
				{"token", "-p", rig.Profile},
				{"exec", "-p", rig.Profile, "--", "true"},
				{"export", "-p", rig.Profile, "--file", exportFile},
			}
			procs := make([]*exec.Cmd, len(argsets))
			errs := make([]*bytes.Buffer, len(argsets))
			for i, args := range argsets {
				var c *exec.Cmd
				if k.strace != nil {
					sargs := append([]string{"-f", "-qq", "-o", "/dev/null"}, k.strace...)
					sargs = append(append(sargs, "--", r.Tokenhelper), args...)
					c = r.Program(context.Background(), straceBin, sargs...)
				} else {
					c = r.Command(context.Background(), args...)
				}
				errs[i] = &bytes.Buffer{}
				c.Stderr = errs[i]
				c.Env = append(c.Env, "TOKENHELPER_VERBOSE=1") // says when it recovers a token
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				procs[i] = c
			}
			victims := map[int]bool{}
			if k.inFlight {
				deadline := time.Now().Add(30 * time.Second)
				for r.TB.Counters().Faults[testbed.EndpointToken] == 0 && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond) // polling the test bed's counters
				}
				for i := range procs {
					victims[i] = true
				}
			} else {
				time.Sleep(time.Duration(rng.Int64N(int64(k.window)))) // a random moment, not a synchronization
				victims[rng.IntN(len(procs))] = true
			}
			for i := range victims {
				_ = syscall.Kill(-procs[i].Process.Pid, syscall.SIGKILL) // the process group: strace and its tracee (it may have ended)
			}
			lostBySurvivor, recovered := false, false
			for i, c := range procs {
				_ = c.Wait() // the exit status is read from ProcessState
				var res rig.Result
				rig.Finish(&res, c.ProcessState)
				if res.Signaled {
					st.killed++
					continue
				}
				if strings.Contains(errs[i].String(), recoveredLine) {
					recovered = true
				}
				switch {
				case res.Code == 0:
					st.survivorsOK++
				case res.Code == 4 && strings.Contains(errs[i].String(), "session expired"):
					lostBySurvivor = true
				default:
					t.Errorf("%s: survivor %v: exit %d: %s", name, argsets[i], res.Code, errs[i].String())
				}
				if leaks := r.Leaks(errs[i].String()); len(leaks) > 0 {
					t.Errorf("%s: stderr holds %v", name, leaks)
				}
			}
			r.TB.ClearFaults()

			// The state must read back whatever happened.
			rt1, err := r.StoredSecret("refresh_token")
			if err != nil {
				t.Fatalf("%s: UNUSABLE STATE: %v", name, err)
			}
			checkCache(t, r, name)
			for _, p := range append(temps(r.StateDir), temps(r.CacheDir)...) {
				if !seenTemps[p] {
					seenTemps[p] = true
					st.litter++
				}
			}

			// Is the stored refresh token still good? Ask the provider
			// before the next call uses it.
			storedActive := rt1 != "" && r.Active(rt1)
			nc := r.Command(context.Background(), "token", "-p", rig.Profile, "--force")
			nc.Env = append(nc.Env, "TOKENHELPER_VERBOSE=1")
			next := r.Run(nc, "")
			if strings.Contains(next.Stderr, recoveredLine) {
				recovered = true
			}
			switch {
			case next.Code == 0:
				if lostBySurvivor {
					t.Errorf("%s: a survivor said the session expired, yet the next refresh worked", name)
				}
				if recovered {
					// The stored token was dead: a survivor or the next
					// call went on with the one a killed write left.
					st.recovered++
				}
			case next.Code == 4 && strings.Contains(next.Stderr, "session expired"):
				if storedActive {
					t.Errorf("%s: 'session expired' while the stored refresh token is still valid at the provider", name)
				}
				// The stored token was used at the provider (rotated) and
				// its successor never reached the disk complete: the
				// window no client can close. A complete leftover would
				// have been recovered.
				st.lost++
				tmps, _ := filepath.Glob(filepath.Join(r.ProfileDir(), ".account.json.tmp-*"))
				for _, tmp := range tmps {
					if rt, err := r.SecretIn(tmp, "refresh_token"); err == nil && rt != "" && r.Active(rt) {
						t.Errorf("%s: session reported lost while %s holds a live refresh token", name, tmp)
					}
				}
				r.Relogin()
			default:
				t.Errorf("%s: next refresh: exit %d: %s", name, next.Code, next.Stderr)
				r.Relogin()
			}
			st.rounds++
		}
		rows = append(rows, []string{k.name, strconv.Itoa(st.rounds), strconv.Itoa(st.killed), strconv.Itoa(st.survivorsOK),
			"0", strconv.Itoa(st.recovered), strconv.Itoa(st.lost), strconv.Itoa(st.litter)})
	}
	if total < 100 {
		t.Errorf("%d rounds, want at least 100", total)
	}
	left := len(append(temps(r.StateDir), temps(r.CacheDir)...))
	md := fmt.Sprintf("Seed %d. Every round: three processes (`token`, `exec -- true`, `export --file`) on an expired cache. "+
		"Temporary files of interrupted writes still there at the end: %d.\n\n", seed, left) +
		table([]string{"kill moment", "rounds", "processes killed", "survivors that got a token", "unusable states",
			"sessions recovered from a killed write's temporary file",
			"sessions lost (killed after the provider's rotation, before the new token was on disk)", "temporary files left by kills"}, rows)
	writeReport(t, "kill.md", md)
}

// checkCache checks that every cache entry file decodes: an entry is
// replaced by rename, so a kill leaves the old or the new one.
func checkCache(t *testing.T, r *rig.Rig, name string) {
	t.Helper()
	dir := filepath.Join(r.CacheDir, "tokens")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	entries, err := r.Cache().List()
	if err != nil {
		t.Fatalf("%s: cache unreadable: %v", name, err)
	}
	if len(entries) != len(files) {
		t.Errorf("%s: %d cache files but %d readable entries", name, len(files), len(entries))
	}
}

// temps lists the temporary files interrupted writes left in dir.
func temps(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil // what cannot be read is not counted
	})
	return out
}
