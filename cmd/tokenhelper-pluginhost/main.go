// Command tokenhelper-pluginhost runs tokenhelper's plugins and isolated
// backends over hashicorp/go-plugin, so that the main tokenhelper binary
// links no gRPC. tokenhelper starts it; see plugins/rpc/pluginhost.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokenhelper/tokenhelper/plugins/rpc/pluginhost"
)

// Version is set at build time (-ldflags -X main.Version=...).
var Version = ""

func main() {
	pluginhost.Version = Version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := pluginhost.Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
