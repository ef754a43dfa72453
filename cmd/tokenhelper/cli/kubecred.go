package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/kubecred"
)

func (a *app) kubeCredentialCommand() *cobra.Command {
	var o tokenOptions
	cmd := &cobra.Command{
		Use:     "kube-credential",
		GroupID: "tools",
		Short:   "kubectl exec credential plugin: an ExecCredential with a token",
		Long: `A kubectl exec credential plugin (client.authentication.k8s.io v1 and v1beta1). In
the kubeconfig:

  users:
  - name: iam
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: tokenhelper
        args: [kube-credential, -p, wlcg]
        interactiveMode: Never

prints an ExecCredential with status.token and status.expirationTimestamp. The profile
is the one named with -p (or TOKENHELPER_PROFILE); without one, and with
provideClusterInfo: true in the kubeconfig, the route serving the cluster's API server
URL chooses it (no route: exit code 10); with neither, the default profile or WLCG
discovery, as for tokenhelper token.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			return kubecred.Run(cmd.Context(), kubeSource{a: a, o: o}, a.sys.Getenv(kubecred.EnvExecInfo), a.stdout())
		}),
	}
	o.register(cmd)
	return cmd
}

// kubeSource picks the profile for a cluster.
type kubeSource struct {
	a *app
	o tokenOptions
}

func (s kubeSource) Token(ctx context.Context, server string) (*helper.Token, error) {
	explicit := s.a.profileFlag != "" || s.a.sys.Getenv(config.EnvProfile) != ""
	if explicit || server == "" {
		tok, _, err := s.a.token(ctx, s.o)
		return tok, err
	}
	cfg, _, err := s.a.config()
	if err != nil {
		return nil, err
	}
	m, err := cfg.MatchURL(server)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, helper.Errorf(helper.KindNoProfile, "no route serves the cluster's API server %s", server).
			WithFix("add [[routes]] url = %q profile = \"NAME\" to %s, or add -p NAME to the exec args in the kubeconfig", server, configPathForMsg(cfg))
	}
	o := s.o
	if len(o.scopes) == 0 {
		o.scopes = m.Scopes
	}
	if len(o.audiences) == 0 {
		o.audiences = m.Audiences
	}
	return s.a.acquire(ctx, m.Profile, s.a.request(m.Profile, o))
}

func configPathForMsg(cfg *config.Config) string {
	if cfg != nil && cfg.Path != "" {
		return cfg.Path
	}
	return "the configuration"
}
