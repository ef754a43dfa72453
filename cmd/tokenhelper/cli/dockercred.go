package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/dockercred"
)

func (a *app) dockerCredentialCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "docker-credential get|store|erase|list",
		GroupID: "tools",
		Short:   "docker credential helper: tokens for the registries your routes name",
		Long: `A docker credential helper (docker-credential-helpers protocol). Install the
docker-credential-tokenhelper link next to tokenhelper (make build does) and name it in
~/.docker/config.json for the registries that take your tokens:

  { "credHelpers": { "harbor.example.org": "tokenhelper" } }

get answers only for registries a [[routes]] entry serves (https://REGISTRY), with the
route's profile; the user name is the profile's username (default oauth2). Other
registries get docker's "credentials not found in native keychain" (exit status 1).
store is accepted and ignored (tokens live in tokenhelper's cache); erase (docker
logout) drops the cached token; list prints the routed registries.`,
		Example:   `  echo harbor.example.org | docker-credential-tokenhelper get`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{dockercred.ActionGet, dockercred.ActionStore, dockercred.ActionErase, dockercred.ActionList},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if a.profileFlag != "" {
				return (&helper.Error{Kind: helper.KindUsage,
					Msg: "docker-credential chooses the profile by registry through [[routes]], never by -p"}).
					WithFix("add a route: [[routes]] url = \"https://REGISTRY\" profile = %q", a.profileFlag)
			}
			err := dockercred.Handle(cmd.Context(), dockerSource{a}, args[0], a.sys.Stdin, a.stdout())
			if err == nil {
				return nil
			}
			// The protocol wants errors on stdout, where docker reads them.
			dockercred.WriteError(a.stdout(), err)
			return &quietError{code: 1}
		}),
	}
}

// dockerSource routes registries to profiles and tokens.
type dockerSource struct{ a *app }

func (s dockerSource) match(server string) (*config.Match, error) {
	cfg, _, err := s.a.config()
	if err != nil {
		return nil, err
	}
	t, err := config.TargetFromURL(dockercred.TargetURL(server))
	if err != nil {
		// Not a URL docker could reach: nothing serves it, and docker is
		// told "credentials not found" as for any unrouted registry.
		return nil, nil //nolint:nilerr // no match, not a failure
	}
	return cfg.Match(t)
}

func (s dockerSource) Get(ctx context.Context, server string) (*dockercred.Credentials, error) {
	m, err := s.match(server)
	if err != nil || m == nil {
		return nil, err
	}
	tok, err := s.a.acquire(ctx, m.Profile, s.a.request(m.Profile, tokenOptions{scopes: m.Scopes, audiences: m.Audiences}))
	if err != nil {
		return nil, err
	}
	user := m.Profile.Username
	if user == "" {
		user = config.DefaultUsername
	}
	return &dockercred.Credentials{Username: user, Secret: tok.AccessToken}, nil
}

func (s dockerSource) Erase(ctx context.Context, server string) error {
	m, err := s.match(server)
	if err != nil || m == nil {
		return err
	}
	return s.a.tokenCache().Delete(ctx, s.a.request(m.Profile, tokenOptions{scopes: m.Scopes, audiences: m.Audiences}))
}

// List names the https routes (and loopback http ones), as written in the
// configuration, with the user name sent to them.
func (s dockerSource) List(ctx context.Context) (map[string]string, error) {
	cfg, _, err := s.a.config()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range cfg.Routes {
		scheme, _, _ := strings.Cut(strings.ToLower(r.URL), "://")
		if scheme != "https" && scheme != "http" {
			continue
		}
		p := cfg.Profiles[r.Profile]
		if p == nil {
			continue
		}
		user := p.Username
		if user == "" {
			user = config.DefaultUsername
		}
		out[r.URL] = user
	}
	return out, nil
}
