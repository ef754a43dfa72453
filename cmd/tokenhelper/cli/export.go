package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"

	"github.com/tokenhelper/tokenhelper/helper/discovery"
)

func (a *app) exportCommand() *cobra.Command {
	var o tokenOptions
	var file string
	var env bool
	cmd := &cobra.Command{
		Use:     "export",
		GroupID: "tokens",
		Short:   "Write the profile's token where WLCG discovery finds it (or to --file)",
		Long: `Get a token of the selected profile and write it, mode 0600 and atomically, to the
WLCG discovery location ($XDG_RUNTIME_DIR/bt_u$UID, else /tmp/bt_u$UID) or to --file.
Prints the path written. With --env prints a line to eval instead:

  eval "$(tokenhelper export --env --file ~/.tokens/wlcg)"

which sets BEARER_TOKEN_FILE for xrdcp, gfal and davix in this shell. A file in /tmp
that belongs to another user, or a symlink planted there, is never written through.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			tok, _, err := a.token(cmd.Context(), o)
			if err != nil {
				return err
			}
			denv := a.discoveryEnv()
			if file != "" {
				abs, err := filepath.Abs(file)
				if err != nil {
					return helper.Wrap(helper.KindUsage, err, "cannot resolve "+file)
				}
				file = abs
			}
			path, err := discovery.Write(denv, tok.AccessToken, discovery.WriteOptions{Path: file})
			if err != nil {
				return err
			}
			if env {
				fmt.Fprintf(a.stdout(), "export BEARER_TOKEN_FILE=%s\n", shellQuote(path))
				return nil
			}
			fmt.Fprintln(a.stdout(), path)
			for _, s := range discovery.Shadowed(denv, path) {
				fmt.Fprintf(a.stderr(), "warning: %s is set and tools will use it before %s: unset it, or export BEARER_TOKEN_FILE=%s\n", s, path, shellQuote(path))
			}
			if path == discovery.TmpPath(denv) {
				fmt.Fprintf(a.stderr(), "note: xrootd clients before 5.6.2 look for /tmp/bt_u11, not %s: for them, export BEARER_TOKEN_FILE=%s (or set XDG_RUNTIME_DIR)\n", path, shellQuote(path))
			}
			if !discovery.Reachable(denv, path) {
				fmt.Fprintf(a.stderr(), "note: tools find %s only through BEARER_TOKEN_FILE: export BEARER_TOKEN_FILE=%s\n", path, shellQuote(path))
			}
			return nil
		}),
	}
	o.register(cmd)
	cmd.Flags().StringVar(&file, "file", "", "write here instead of the discovery location")
	cmd.Flags().BoolVar(&env, "env", false, "print an 'export BEARER_TOKEN_FILE=…' line for eval instead of the path")
	return cmd
}
