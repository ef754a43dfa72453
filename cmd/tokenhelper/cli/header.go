package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/integrations/curl"
)

func (a *app) headerCommand() *cobra.Command {
	var o tokenOptions
	cmd := &cobra.Command{
		Use:     "header [URL...]",
		GroupID: "tools",
		Short:   `Print the "Authorization: Bearer …" header line for scripts`,
		Long: `Print one line, "Authorization: Bearer <token>", for tools that take a header
(curl -H @file, gocurl -header, wget --header, davix -H, a Python script).

With URLs, the profile, scopes and audiences come from the [[routes]] entry serving
them (or -p), exactly as for tokenhelper curl; a URL no route serves is refused (exit 10)
unless -p names the profile. Without a URL the profile is -p, $TOKENHELPER_PROFILE,
default_profile, else WLCG discovery, as for tokenhelper token.

Keep the line out of argv: read it from a file or a pipe (curl -H @<(...)) rather than
pasting $(tokenhelper header) into a command line other users can read in /proc.`,
		Example: `  curl -H @<(tokenhelper header https://se.example.org:2880/data/f) https://se.example.org:2880/data/f
  tokenhelper header -p wlcg | ./upload.py   # reads the header line on stdin`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			var tokStr string
			if len(args) > 0 {
				p, o2, err := a.routeURLs(args, o)
				if err != nil {
					return err
				}
				tok, err := a.acquire(cmd.Context(), p, a.request(p, o2))
				if err != nil {
					return err
				}
				tokStr = tok.AccessToken
			} else {
				tok, _, err := a.token(cmd.Context(), o)
				if err != nil {
					return err
				}
				tokStr = tok.AccessToken
			}
			_, err := fmt.Fprintln(a.stdout(), curl.HeaderLine(tokStr))
			return err
		}),
	}
	o.register(cmd)
	return cmd
}
