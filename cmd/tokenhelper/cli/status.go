package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/oidcagent"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		GroupID: "setup",
		Short:   "Show profiles, their backends' state, cached tokens and what discovery finds",
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			cfg, dirs, err := a.config()
			if err != nil {
				return err
			}
			w := a.stdout()
			now := a.sys.Now()
			fmt.Fprintf(w, "Config: %s", dirs.ConfigFile)
			if cfg.Path == "" {
				fmt.Fprint(w, " (none)")
			}
			fmt.Fprintln(w)
			names := cfg.ProfileNames()
			if a.profileFlag != "" {
				p, err := a.profile()
				if err != nil {
					return err
				}
				names = []string{p.Name}
			}
			for _, name := range names {
				p := cfg.Profiles[name]
				fmt.Fprintf(w, "\nProfile %s (backend %s)\n", name, p.Backend)
				for _, line := range a.backendStatus(cmd.Context(), p) {
					fmt.Fprintf(w, "  %s\n", line)
				}
			}
			if entries, err := a.tokenCache().List(); err == nil && len(entries) > 0 {
				fmt.Fprintf(w, "\nCached tokens (%s):\n", a.tokenCache().Dir)
				for _, e := range entries {
					desc := quoteName(e.Request.Profile)
					if len(e.Request.Scopes) > 0 {
						desc += " scopes=" + strings.Join(e.Request.Scopes, ",")
					}
					if len(e.Request.Audiences) > 0 {
						desc += " aud=" + strings.Join(e.Request.Audiences, ",")
					}
					fmt.Fprintf(w, "  %s: %s\n", desc, validity(e.Token.Expiry, now))
				}
			}
			a.agentStatus(cmd.Context(), w)
			fmt.Fprintln(w, "\nWLCG discovery:")
			if res, err := discovery.Find(a.discoveryEnv()); err != nil {
				fmt.Fprintf(w, "  %s\n", oneLine(err.Error()))
			} else {
				exp := time.Time{}
				if info, err := jwtinfo.Parse(res.Token); err == nil {
					exp = info.Expiry
				}
				fmt.Fprintf(w, "  %s: %s\n", res.Label(), validity(exp, now))
			}
			return nil
		}),
	}
}

func validity(exp, now time.Time) string {
	switch {
	case exp.IsZero():
		return "validity unknown"
	case exp.After(now):
		return "valid for " + jwtinfo.FormatTTL(exp.Sub(now))
	default:
		return "expired " + jwtinfo.FormatTTL(now.Sub(exp)) + " ago"
	}
}

// backendStatus asks a backend to describe itself, bounded in time.
func (a *app) backendStatus(ctx context.Context, p *config.Profile) []string {
	be, _, err := plugins.Open(p, a.deps())
	if err != nil {
		return []string{oneLine(err.Error())}
	}
	st, ok := be.(helper.Statuser)
	if !ok {
		return []string{"(this backend reports no status)"}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := st.Status(ctx)
	if err != nil {
		return []string{oneLine(err.Error())}
	}
	lines := s.Lines
	if !s.SessionExpiry.IsZero() {
		lines = append(lines, "session "+validity(s.SessionExpiry, a.sys.Now()))
	}
	return lines
}

// agentStatus reports a running oidc-agent (if any is configured or at its
// default socket) and its loaded accounts.
func (a *app) agentStatus(ctx context.Context, w io.Writer) {
	env := a.deps().OIDCAgentEnv()
	ep, err := oidcagent.Locate(env)
	if err != nil {
		if a.sys.Getenv(oidcagent.EnvSock) != "" || a.sys.Getenv(oidcagent.EnvRemoteSock) != "" {
			fmt.Fprintf(w, "\noidc-agent:\n  %s\n", oneLine(err.Error()))
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fmt.Fprintf(w, "\noidc-agent (%s):\n", ep)
	accts, err := oidcagent.LoadedAccounts(ctx, env)
	switch {
	case err != nil:
		fmt.Fprintf(w, "  %s\n", oneLine(err.Error()))
	case len(accts) == 0:
		fmt.Fprintln(w, "  reachable; no account loaded (oidc-add NAME)")
	default:
		fmt.Fprintf(w, "  reachable; loaded accounts: %s\n", strings.Join(accts, ", "))
	}
}
