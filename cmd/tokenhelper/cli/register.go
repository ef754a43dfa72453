package cli

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

// maxClientSecret bounds a client secret read from a file.
const maxClientSecret = 4096

func (a *app) registerCommand() *cobra.Command {
	var nf nativeFlags
	var (
		issuer, caFile, clientID, secretEnv, secretFile, flow string
		scopes, auds                                          []string
		public, plaintext, force, noLogin, exchange           bool
	)
	var presetLines []string
	for _, p := range native.Presets() {
		presetLines = append(presetLines, fmt.Sprintf("  %-12s %s (%s)", p.Name, p.Issuer, p.Description))
	}
	cmd := &cobra.Command{
		Use:     "register",
		GroupID: "setup",
		Short:   "Register a client at an IAM, store it encrypted, and log in",
		Long: `Set up a native profile, once: find the provider (OpenID discovery), register a client
for it (RFC 7591 dynamic registration, asking for the device code and refresh token
grants), store the client secret and, after the login, the refresh token, encrypted
with a passphrase you choose — then log in (device flow by default).

Known providers can be named instead of their URL:
` + strings.Join(presetLines, "\n") + `

The profile is named with -p (default: the preset's name, else the issuer's host). When
the config file has no [profiles.NAME] yet, one is added at its end (the file is created
if needed; nothing already in it is changed), so "tokenhelper token -p NAME" works right
away. A profile that is already registered is left alone unless --force (which first
logs the old one out: revokes its refresh token and deletes its client).

A client registered by an administrator: --client-id with --client-secret-file or
--client-secret-env (never on the command line: others can read it there), or --public.
For robots on locked-down hosts, --plaintext stores the secrets unencrypted (warned).`,
		Example: `  tokenhelper register --issuer wlcg
  tokenhelper register -p lsst --issuer lsst-france
  tokenhelper register -p site --issuer https://iam.example.org/ --scope "openid offline_access storage.read:/"
  tokenhelper register -p robot --issuer https://iam.example.org/ --client-id ID --client-secret-file ~/.robot-secret \
      --flow client-credentials --plaintext`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, dirs, err := a.config()
			if err != nil {
				return err
			}
			// The issuer: a preset name or a URL.
			var preset *native.Preset
			if issuer != "" {
				if pr, ok := native.LookupPreset(issuer); ok {
					preset, issuer = &pr, pr.Issuer
				} else if u, err := url.Parse(issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
					return helper.Errorf(helper.KindUsage, "--issuer %q is neither a URL nor a known provider", issuer).
						WithFix("use the issuer URL (https://…) or one of: %s", presetNames())
				}
			}
			name := a.profileFlag
			if name == "" {
				switch {
				case preset != nil:
					name = preset.Name
				case issuer != "":
					u, _ := url.Parse(issuer)
					name = u.Hostname()
				default:
					p, err := a.profile()
					if err != nil {
						return err
					}
					if p == nil {
						return helper.Errorf(helper.KindUsage, "register needs --issuer (a URL or one of %s)", presetNames()).
							WithFix("e.g. tokenhelper register --issuer wlcg")
					}
					name = p.Name
				}
			}
			var p *config.Profile
			newSection := false
			if existing, ok := cfg.Profiles[name]; ok && existing != nil {
				if existing.Backend != config.BackendNative {
					return helper.Errorf(helper.KindConfig, "profile %q in %s uses backend %s; register sets up native profiles", name, cfg.Path, existing.Backend).
						WithFix("choose another name with -p")
				}
				if issuer != "" && strings.TrimSuffix(existing.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
					return helper.Errorf(helper.KindConfig, "profile %q in %s has issuer %s, not %s", name, cfg.Path, existing.Issuer, issuer).
						WithFix("edit issuer in [profiles.%s], or choose another name with -p", name)
				}
				for _, fl := range []string{"scope", "aud", "ca-file", "exchange"} {
					if cmd.Flags().Changed(fl) {
						return helper.Errorf(helper.KindUsage, "profile %q already exists in %s: --%s cannot change it", name, cfg.Path, fl).
							WithFix("edit [profiles.%s] in %s instead", name, cfg.Path)
					}
				}
				cp := *existing
				p = &cp
				if p.Name == "" {
					p.Name = name
				}
			} else {
				if issuer == "" {
					return helper.Errorf(helper.KindUsage, "profile %q does not exist yet: register needs --issuer (a URL or one of %s)", name, presetNames()).
						WithFix("e.g. tokenhelper register -p %s --issuer wlcg", name)
				}
				p = &config.Profile{Name: name, Backend: config.BackendNative, Issuer: issuer, Flow: flow, Exchange: exchange,
					ClientID: clientID, PassphraseEnv: nf.pwEnv, PassphraseCmd: nf.pwCmd, Plaintext: plaintext,
					Scopes: splitWords(scopes), Audiences: splitWords(auds)}
				if len(p.Scopes) == 0 {
					if preset != nil {
						p.Scopes = preset.Scopes
					} else if pr, ok := native.PresetForIssuer(issuer); ok {
						p.Scopes = pr.Scopes
					} else {
						p.Scopes = native.DefaultScopes
					}
				}
				if caFile != "" {
					if p.CAFile, err = filepath.Abs(caFile); err != nil {
						return helper.Wrap(helper.KindUsage, err, "cannot resolve "+caFile)
					}
				}
				if nf.pwFile != "" {
					if p.PassphraseFile, err = filepath.Abs(nf.pwFile); err != nil {
						return helper.Wrap(helper.KindUsage, err, "cannot resolve "+nf.pwFile)
					}
				}
				newSection = true
			}
			if clientID == "" {
				clientID = p.ClientID
			}
			section := native.ProfileSection(p, "Added by \"tokenhelper register\" on "+a.sys.Now().UTC().Format("2006-01-02")+".")
			if newSection {
				if err := native.CheckSection(dirs.ConfigFile, section); err != nil {
					return err
				}
			}

			be, err := a.nativeBackend(p, &nf)
			if err != nil {
				return err
			}
			info, err := be.Account()
			if err != nil && !force {
				return err
			}
			if info != nil && !force {
				// seed 000: say so, and how to go on.
				w := a.stderr()
				fmt.Fprintf(w, "tokenhelper: profile %q is already registered (client %s at %s): you do not need to register again\n", name, info.ClientID, info.Issuer)
				fmt.Fprintf(w, "tokenhelper: to get an access token: tokenhelper login -p %s (see tokenhelper login --help)\n", name)
				fmt.Fprintf(w, "tokenhelper: to register again (the current client is deleted first): tokenhelper register -p %s --force\n", name)
				if newSection {
					fmt.Fprintf(w, "tokenhelper: note: %s has no [profiles.%s]; --force re-creates it\n", dirs.ConfigFile, name)
				}
				return nil
			}

			reg := native.Registration{ClientID: clientID, Public: public, Flow: flow, Plaintext: plaintext || p.Plaintext, Force: force, NoLogin: noLogin}
			if clientID != "" && !public {
				if reg.ClientSecret, err = a.clientSecret(secretEnv, secretFile, clientID); err != nil {
					return err
				}
			}
			if newSection {
				reg.Saved = func() error {
					if err := native.AppendSection(dirs.ConfigFile, section); err != nil {
						return err
					}
					fmt.Fprintf(a.stderr(), "Added [profiles.%s] to %s.\n", name, dirs.ConfigFile)
					a.cfg = nil // reload: the profile exists now
					return nil
				}
			}
			req := a.request(p, tokenOptions{})
			tok, err := be.Register(ctx, reg, req)
			if err != nil {
				return err
			}
			w := a.stderr()
			if noLogin {
				fmt.Fprintf(w, "Profile %q is registered. Log in with: tokenhelper login -p %s\n", name, name)
				return nil
			}
			a.storeLoginToken(ctx, req, tok)
			fmt.Fprintf(w, "\nEverything is set up: profile %q is registered and logged in.\n", name)
			fmt.Fprintf(w, "  tokenhelper token -p %s      prints an access token (for scripts and tools)\n", name)
			fmt.Fprintf(w, "  tokenhelper inspect -p %s    shows what it contains\n", name)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&issuer, "issuer", "", "the provider: its issuer `URL`, or "+presetNames())
	f.StringArrayVarP(&scopes, "scope", "s", nil, "scopes to ask for (repeatable or space-separated; default: the preset's)")
	f.StringArrayVar(&auds, "aud", nil, "default audience of the profile's tokens (repeatable)")
	f.StringVar(&caFile, "ca-file", "", "PEM bundle of a private CA to trust for the provider")
	f.StringVar(&clientID, "client-id", "", "use this client (registered by an administrator) instead of registering one")
	f.StringVar(&secretEnv, "client-secret-env", "", "read the client secret from environment variable `VAR`")
	f.StringVar(&secretFile, "client-secret-file", "", "read the client secret from the first line of `FILE`")
	f.BoolVar(&public, "public", false, "the --client-id client has no secret")
	f.StringVar(&flow, "flow", "", "login flow: device (default), password or client-credentials")
	f.BoolVar(&exchange, "exchange", false, "down-scope by RFC 8693 token exchange instead of refresh parameters")
	f.BoolVar(&plaintext, "plaintext", false, "store the secrets UNENCRYPTED (robot accounts on locked-down hosts only)")
	f.BoolVar(&force, "force", false, "register again even if the profile is registered (the old client is logged out first)")
	f.BoolVar(&noLogin, "no-login", false, "only register the client; log in later with tokenhelper login")
	nf.registerPassphrase(cmd)
	nf.registerLogin(cmd)
	_ = cmd.RegisterFlagCompletionFunc("issuer", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, p := range native.Presets() {
			out = append(out, p.Name+"\t"+p.Description)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func presetNames() string {
	var n []string
	for _, p := range native.Presets() {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

// splitWords flattens repeated and space-separated values.
func splitWords(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	return out
}

// clientSecret reads a pre-registered client's secret from the
// environment variable or file named, else asks at the terminal. It is
// never taken from the command line, where other users can read it.
func (a *app) clientSecret(env, file, clientID string) (string, error) {
	switch {
	case env != "":
		v, ok := a.sys.LookupEnv(env)
		if v = strings.TrimSpace(v); !ok || v == "" {
			return "", helper.Errorf(helper.KindUsage, "environment variable %s (--client-secret-env) is not set or empty", env).
				WithFix("export %s with the client secret", env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", helper.Wrap(helper.KindUsage, err, "cannot read the client secret file "+file).WithFix("check --client-secret-file")
		}
		if len(b) > maxClientSecret {
			return "", helper.Errorf(helper.KindUsage, "%s is larger than %d bytes: not a client secret", file, maxClientSecret)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimSpace(line); line == "" {
			return "", helper.Errorf(helper.KindUsage, "%s is empty", file).WithFix("put the client secret on its first line")
		}
		return line, nil
	}
	ui := a.ui()
	if !ui.Terminal() {
		return "", helper.Errorf(helper.KindUsage, "client %s needs its secret and there is no terminal to ask", clientID).
			WithFix("pass --client-secret-file FILE or --client-secret-env VAR (or --public for a client without secret)")
	}
	s, err := ui.Secret(fmt.Sprintf("Client secret of %s: ", clientID))
	if err != nil {
		return "", err
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", helper.Errorf(helper.KindUsage, "no client secret given").WithFix("run again; pass --public for a client without secret")
	}
	return s, nil
}
