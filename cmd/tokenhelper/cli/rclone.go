package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/integrations/rclone"
)

func (a *app) rcloneConfigCommand() *cobra.Command {
	var o tokenOptions
	cmd := &cobra.Command{
		Use:     "rclone-config REMOTE URL",
		GroupID: "tools",
		Short:   "Print an rclone.conf section for a WebDAV storage, with tokenhelper as bearer_token_command",
		Long: `Print a ready rclone.conf section: a webdav remote named REMOTE for URL with
vendor = other (dCache, XRootD, StoRM) and

  bearer_token_command = /abs/path/to/tokenhelper token -p PROFILE -s SCOPE --aud AUDIENCE

The profile, scopes and audiences are those of the [[routes]] entry serving URL (or -p
and -s/--aud). rclone runs the command without a shell, split on single spaces, so the
path of this tokenhelper is written out in full and nothing may contain a space.

rclone runs the command once at the start and again only after an HTTP 401. dCache
answers 401 to an expired token, so rclone recovers; XRootD answers 403 and rclone
never asks again: for long transfers to XRootD pass --min-valid longer than the
transfer (it is added to the command), or run rclone under tokenhelper exec. See
docs/rclone.md.`,
		Example: `  tokenhelper rclone-config dcache davs://dcache.example.org:2880/pnfs/example.org/data >> ~/.config/rclone/rclone.conf
  rclone ls dcache:alice
  tokenhelper rclone-config -p wlcg --min-valid 2h eos https://eos.example.org:8443/eos/data`,
		Args: cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			remote, raw := args[0], args[1]
			u, err := rclone.WebDAVURL(raw)
			if err != nil {
				return err
			}
			p, o, err := a.routeURLs([]string{u}, o)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return helper.Wrap(helper.KindInternal, err, "cannot find the path of the tokenhelper executable")
			}
			if resolved, err := filepath.EvalSymlinks(exe); err == nil {
				exe = resolved
			}
			argv := []string{exe}
			if a.configFlag != "" {
				abs, err := filepath.Abs(a.configFlag)
				if err != nil {
					return helper.Wrap(helper.KindUsage, err, "cannot resolve --config "+a.configFlag)
				}
				argv = append(argv, "--config", abs)
			}
			argv = append(argv, "token", "-p", p.Name)
			req := a.request(p, o)
			for _, s := range req.Scopes {
				argv = append(argv, "-s", s)
			}
			for _, aud := range req.Audiences {
				argv = append(argv, "--aud", aud)
			}
			if o.minSet {
				argv = append(argv, "--min-valid", o.minValid.String())
			}
			sec, err := rclone.Section(rclone.Remote{Name: remote, URL: u, Command: argv})
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stdout(), sec)
			return err
		}),
	}
	o.register(cmd)
	cmd.Flags().Lookup("min-valid").Usage = "the token rclone gets must stay valid this long (added to the command; use it for long transfers, see docs/rclone.md)"
	_ = cmd.Flags().MarkHidden("force")
	return cmd
}
