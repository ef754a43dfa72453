package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// commands lists every subcommand.
func (a *app) commands() []*cobra.Command {
	return []*cobra.Command{
		a.tokenCommand(),
		a.inspectCommand(),
		a.discoverCommand(),
		a.exportCommand(),
		a.registerCommand(),
		a.loginCommand(),
		a.logoutCommand(),
		a.passwdCommand(),
		a.lockCommand(),
		a.statusCommand(),
		a.configCommand(),
		a.pluginCommand(),
		a.versionCommand(),
		a.gitCredentialCommand(),
		a.dockerCredentialCommand(),
		a.kubeCredentialCommand(),
		a.curlCommand(),
		a.headerCommand(),
		a.rcloneConfigCommand(),
		a.execCommand(),
		a.shellCommand(),
		a.renewCommand(),
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		GroupID: "setup",
		Short:   "Print the version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(a.stdout(), "tokenhelper %s (%s, %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
