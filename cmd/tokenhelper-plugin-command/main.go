// Command tokenhelper-plugin-command is the tokenhelper backend that runs
// a profile's command to get a token (htgettoken, mytoken, oidc-token, a
// site script). See plugins/command and docs/plugins.md.
package main

import (
	"context"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/plugins/command"
	"github.com/tokenhelper/tokenhelper/plugins/sdk"
)

// Version is set at build time (-ldflags -X main.Version=...).
var Version = ""

func main() {
	sdk.ServeFactory(func(ctx context.Context, c sdk.Config) (helper.Backend, error) {
		return command.New(c.Profile, command.OSEnv())
	}, sdk.WithName(command.Name), sdk.WithVersion(Version), sdk.WithPrototype(&command.Backend{}))
}
