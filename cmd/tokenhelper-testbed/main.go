// Command tokenhelper-testbed runs the loopback test bed (an INDIGO-IAM-like
// OpenID provider and a WLCG-token-protected WebDAV storage) for people and
// scripts: `make demo`, rehearsals, end-to-end tests in shell. See
// integrations/testbed/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
