package cli

import (
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) shellCommand() *cobra.Command {
	var o tokenOptions
	var envToken bool
	cmd := &cobra.Command{
		Use:     "shell [-p NAME] [-s SCOPE]... [--aud AUD]... [--env-token] [-- SHELL-ARG...]",
		GroupID: "tools",
		Short:   "Start $SHELL with BEARER_TOKEN_FILE kept fresh while it runs (like httokensh, oidc-tokensh)",
		Long: `Start your shell ($SHELL, else /bin/sh) the way tokenhelper exec runs a command:
BEARER_TOKEN_FILE names a private token file that is renewed for as long as the shell
runs, and removed when you leave it. Everything started from that shell (xrdcp, gfal,
davix through discovery, tokenhelper itself) finds the token. Arguments after "--" go to
the shell. The exit status is the shell's.

--env-token also sets BEARER_TOKEN, which cannot be renewed: programs started after the
token expired would see an expired token in it. Prefer the file.`,
		Example: `  tokenhelper shell -p wlcg
  tokenhelper shell -- -c 'xrdcp roots://se.example.org//data/f .'`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			sh := a.sys.Getenv("SHELL")
			if sh == "" || !filepath.IsAbs(sh) {
				sh = "/bin/sh"
			}
			argv := append([]string{sh}, args...)
			note := "tokenhelper: starting " + strings.ReplaceAll(sh, "%", "%%") + " with BEARER_TOKEN_FILE=%s, renewed while the shell runs; exit the shell to end\n"
			return a.runExec(cmd.Context(), o, envToken, argv, note)
		}),
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&envToken, "env-token", false, execEnvTokenHelp)
	return cmd
}
