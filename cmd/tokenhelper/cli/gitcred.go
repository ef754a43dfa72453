package cli

import (
	"context"
	"crypto/subtle"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/gitcred"
)

func (a *app) gitCredentialCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "git-credential get|store|erase|capability",
		GroupID: "tools",
		Short:   "git credential helper: tokens for the git hosts your routes name",
		Long: `A git credential helper (git-credential(1)). git runs it as git-credential-tokenhelper
when configured with one line per host:

  git config --global credential.https://gitlab.example.org.helper tokenhelper

(or '!tokenhelper git-credential'). It answers only for URLs a [[routes]] entry of the
configuration serves, with that route's profile, scopes and audiences; for every other
URL it prints nothing and git goes on to its next helper. A default profile never
makes it answer: a token goes only to a host it is meant for.

git ≥ 2.46 gets the token as "Authorization: Bearer"; older git (2.39 on Debian
bookworm) as the password of Basic authentication, with the profile's username
(default oauth2). When the server rejects the token, git's erase drops it from the
token cache so the next command gets a new one; store is ignored. When no token can be
had without a person, one line on stderr says which command to run. See docs/git.md.`,
		Example: `  git config --global credential.https://gitlab.example.org.helper tokenhelper
  printf 'protocol=https\nhost=gitlab.example.org\n\n' | tokenhelper git-credential get`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{gitcred.ActionGet, gitcred.ActionStore, gitcred.ActionErase, gitcred.ActionCapability},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if a.profileFlag != "" {
				return (&helper.Error{Kind: helper.KindUsage,
					Msg: "git-credential chooses the profile by URL through [[routes]], never by -p, so that a token only goes to the host it is meant for"}).
					WithFix("add a route: [[routes]] url = \"https://HOST\" profile = %q (see docs/git.md)", a.profileFlag)
			}
			h := &gitcred.Handler{Source: gitSource{a}, Notices: a.stderr()}
			return h.Handle(cmd.Context(), args[0], a.sys.Stdin, a.stdout())
		}),
	}
	return cmd
}

// gitSource routes git's URLs to profiles and tokens.
type gitSource struct{ a *app }

// match finds the route serving t; nil when none does.
func (s gitSource) match(t config.RouteTarget) (*config.Match, error) {
	cfg, _, err := s.a.config()
	if err != nil {
		return nil, err
	}
	m, err := cfg.Match(t)
	if err != nil {
		return nil, err
	}
	if m == nil {
		s.a.log.Info("no route serves this URL: declining", "scheme", t.Scheme, "host", t.Host, "port", t.Port, "path", t.Path, "path_known", t.PathKnown)
		return nil, nil
	}
	if m.PathIgnored {
		s.a.log.Info("git sent no path; routes with a path for this host were not considered (git config --global credential.useHttpPath true)", "host", t.Host)
	}
	return m, nil
}

func (s gitSource) request(m *config.Match) helper.Request {
	return s.a.request(m.Profile, tokenOptions{scopes: m.Scopes, audiences: m.Audiences})
}

func (s gitSource) Token(ctx context.Context, t config.RouteTarget) (*gitcred.Answer, error) {
	m, err := s.match(t)
	if err != nil || m == nil {
		return nil, err
	}
	tok, err := s.a.acquire(ctx, m.Profile, s.request(m))
	if err != nil {
		return nil, err
	}
	return &gitcred.Answer{Token: tok, Username: m.Profile.Username}, nil
}

func (s gitSource) Forget(ctx context.Context, t config.RouteTarget, secret string) (bool, error) {
	m, err := s.match(t)
	if err != nil || m == nil {
		return false, err
	}
	return forgetCached(ctx, s.a.tokenCache(), s.request(m), secret)
}

// forgetCached deletes the cache entry for req if it holds secret, and
// reports whether it did. Entries for other requests and other tokens
// (another helper's password, a token already replaced) are left alone.
func forgetCached(ctx context.Context, c *cache.Cache, req helper.Request, secret string) (bool, error) {
	req = req.Normalized()
	entries, err := c.List()
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Request.Profile != req.Profile || !slices.Equal(e.Request.Scopes, req.Scopes) || !slices.Equal(e.Request.Audiences, req.Audiences) {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(e.Token.AccessToken), []byte(secret)) != 1 {
			return false, nil
		}
		if err := c.Delete(ctx, req); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}
