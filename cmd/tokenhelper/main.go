// Command tokenhelper hands OAuth2/OIDC bearer tokens to grid tools through
// the protocols they already speak. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.OSSystem())
	stop()
	os.Exit(code)
}
