package bench

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli"
	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
)

// BenchmarkWarmToken is `tokenhelper token -p tb` on a warm cache (a
// logged-in native profile at the test bed): in-process (cli.Main: the
// command's own work) and as a process (the binary make build makes:
// start-up included). go test -bench runs it; scripts/peers.sh compares
// the process with its peers.
func BenchmarkWarmToken(b *testing.B) {
	r := rig.New(b, rig.Options{})
	r.Login()
	want := r.Run1("", "token", "-p", rig.Profile).Stdout
	env := map[string]string{}
	for _, kv := range r.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	b.Run("in-process", func(b *testing.B) {
		var out strings.Builder
		sys := &cli.System{
			Stdin: strings.NewReader(""), Stdout: &out, Stderr: io.Discard,
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Environ:   func() []string { return r.Env() }, Now: time.Now, UID: os.Geteuid(), TmpDir: r.Dir, Location: time.UTC,
		}
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			if code := cli.Main(context.Background(), []string{"tokenhelper", "token", "-p", rig.Profile}, sys); code != 0 || out.String() != want {
				b.Fatalf("exit %d", code)
			}
		}
	})
	b.Run("process", func(b *testing.B) {
		for b.Loop() {
			if res := r.Run(r.Command(context.Background(), "token", "-p", rig.Profile), ""); res.Code != 0 || res.Stdout != want {
				b.Fatalf("exit %d: %s", res.Code, res.Stderr)
			}
		}
	})
}
