package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins"
)

func (a *app) logoutCommand() *cobra.Command {
	var nf nativeFlags
	var forget bool
	cmd := &cobra.Command{
		Use:     "logout",
		GroupID: "setup",
		Short:   "End the session: revoke the refresh token, delete the client, delete local state",
		Long: `End a profile's session everywhere tokenhelper can:

  1. revoke the refresh token at the provider (RFC 7009);
  2. delete the client tokenhelper registered for the profile (RFC 7592);
  3. delete the local state: the encrypted client secret and refresh token, the key,
     its unlock in the kernel keyring, and the profile's cached access tokens.

Steps 1 and 2 need the passphrase. If the provider cannot be reached, nothing is
deleted locally, so that logout can be tried again.

--forget deletes the local state only: no passphrase, no network. It is the way out
of a forgotten passphrase, and says what is left at the provider (the client and its
refresh token) and how to remove it.

The profile's section in the config file stays; "tokenhelper register -p NAME" sets
the profile up again.`,
		Example: `  tokenhelper logout -p wlcg
  tokenhelper logout -p wlcg --forget     # passphrase forgotten`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.profile()
			if err != nil {
				// A profile whose config section is gone may still have
				// local state to delete.
				if !helper.IsKind(err, helper.KindNoProfile) || a.profileFlag == "" {
					return err
				}
				p = &config.Profile{Name: a.profileFlag, Backend: config.BackendNative}
			}
			if p == nil {
				return helper.Errorf(helper.KindNoProfile, "no profile to log out").WithFix("name one with -p NAME")
			}
			var lo helper.Logouter
			if p.Backend == config.BackendNative {
				be, err := a.nativeBackend(p, &nf)
				if err != nil {
					return err
				}
				lo = be
			} else {
				be, _, err := plugins.Open(p, a.deps())
				if err != nil {
					return err
				}
				lo, _ = be.(helper.Logouter)
			}
			if lo != nil {
				if err := lo.Logout(ctx, helper.LogoutRequest{Profile: p.Name, Forget: forget, UI: a.ui()}); err != nil {
					return err
				}
			}
			n, err := a.tokenCache().DeleteProfile(ctx, p.Name)
			if err != nil {
				return err
			}
			w := a.stderr()
			if n > 0 {
				fmt.Fprintf(w, "Deleted %d cached access token(s) of profile %q.\n", n, p.Name)
			}
			if lo == nil {
				// The session lives in the backend (oidc-agent, a token
				// file, a plugin): tokenhelper only had its cache.
				fmt.Fprintf(w, "Profile %q keeps its session in its backend (%s): %s.\n", p.Name, p.Backend, backendLogoutHint(p))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&forget, "forget", false, "delete the local state only, without passphrase or network")
	nf.registerPassphrase(cmd)
	return cmd
}

// backendLogoutHint says how to end a session tokenhelper does not own.
func backendLogoutHint(p *config.Profile) string {
	switch p.Backend {
	case config.BackendOIDCAgent:
		if p.Account != "" {
			return "to end it, run: oidc-add -r " + p.Account
		}
		return "to end it, remove the account from the agent: oidc-add -r ACCOUNT"
	case config.BackendFile:
		return "delete or replace its token file to end it"
	}
	return "end it with the backend's own tool"
}
