// Command tokenhelper-demo is `make demo`: a guided tour of tokenhelper
// against the loopback test bed, run with the real tokenhelper executable
// (see integrations/testbed/demo).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/tokenhelper/tokenhelper/integrations/testbed/demo"
)

func main() {
	// The test bed's OpenID provider library logs its routes through the
	// default logger; the tour has no use for them.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("tokenhelper-demo", flag.ContinueOnError)
	th := fs.String("tokenhelper", "", "the tokenhelper executable (default: next to this program, else in PATH)")
	noCurl := fs.Bool("no-curl", false, "use Go's HTTP client even when curl is installed")
	dir := fs.String("dir", "", "keep everything in this directory (default: a temporary one, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *th == "" {
		*th = findTokenhelper()
	}
	o := demo.Options{Tokenhelper: *th, Out: os.Stdout, Dir: *dir}
	if *noCurl {
		o.Curl = "-"
	}
	if err := demo.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "\ntokenhelper-demo: FAILED: %v\n", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

func findTokenhelper() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "tokenhelper")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("tokenhelper"); err == nil {
		return p
	}
	return ""
}
