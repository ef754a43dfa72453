package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/helper/secret"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

// nativeFlags are the flags register, login and logout share for the
// native backend.
type nativeFlags struct {
	pwEnv, pwFile, pwCmd string
	headless             bool
	username             string
}

func (f *nativeFlags) registerPassphrase(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.pwEnv, "pw-env", "", "read the passphrase from environment variable `VAR` (instead of a prompt)")
	fl.StringVar(&f.pwFile, "pw-file", "", "read the passphrase from the first line of `FILE` (mode 0600)")
	fl.StringVar(&f.pwCmd, "pw-cmd", "", "run `CMD` (with /bin/sh) and use the first line it prints as the passphrase")
}

func (f *nativeFlags) registerLogin(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.headless, "headless", false, "device flow without a terminal: print the URL and code, and wait while a person approves elsewhere")
	fl.StringVar(&f.username, "username", "", "user name for --flow password (else asked)")
}

// sources returns the passphrase sources the flags name (nil: none, use
// the profile's).
func (f *nativeFlags) sources() (*secret.Sources, error) {
	if f.pwEnv == "" && f.pwFile == "" && f.pwCmd == "" {
		return nil, nil
	}
	s := &secret.Sources{Env: f.pwEnv, Cmd: f.pwCmd}
	if f.pwFile != "" {
		abs, err := filepath.Abs(f.pwFile)
		if err != nil {
			return nil, helper.Wrap(helper.KindUsage, err, "cannot resolve "+f.pwFile)
		}
		s.File = abs
	}
	return s, nil
}

// lineUI adds reading a line with echo to the terminal UI (the user name
// of the password flow). It reads stdin byte by byte, so nothing typed
// ahead for a later password prompt is swallowed.
type lineUI struct {
	helper.UI
	in io.Reader
}

func (u lineUI) Line(prompt string) (string, error) {
	if !u.Terminal() {
		return "", &helper.Error{Kind: helper.KindLoginNeeded, Msg: "an answer is needed but there is no terminal to ask on"}
	}
	fmt.Fprint(u.Out(), prompt)
	var b []byte
	one := make([]byte, 1)
	for len(b) < 1024 {
		n, err := u.in.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			b = append(b, one[0])
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				break
			}
			return "", helper.Wrap(helper.KindUsage, err, "no answer was read")
		}
	}
	return strings.TrimSpace(string(b)), nil
}

// nativeBackend builds the native backend for p with the flags' options.
func (a *app) nativeBackend(p *config.Profile, f *nativeFlags) (*native.Backend, error) {
	_, dirs, err := a.config()
	if err != nil {
		return nil, err
	}
	src, err := f.sources()
	if err != nil {
		return nil, err
	}
	return native.New(p, native.Options{
		Dirs:       dirs,
		Now:        a.sys.Now,
		LookupEnv:  a.sys.LookupEnv,
		Log:        a.log,
		UI:         lineUI{UI: a.ui(), in: a.sys.Stdin},
		Passphrase: src,
		Headless:   f.headless,
		Username:   f.username,
	})
}

// errCacheMiss ends a cache lookup that must not acquire.
var errCacheMiss = errors.New("no cached token")

// cachedToken returns the cached token for req if one is valid beyond
// req.MinValid, without asking the backend.
func (a *app) cachedToken(ctx context.Context, req helper.Request) *helper.Token {
	tok, err := a.tokenCache().Get(ctx, req, func(context.Context) (*helper.Token, error) { return nil, errCacheMiss })
	if err != nil {
		return nil
	}
	return tok
}

func (a *app) loginCommand() *cobra.Command {
	var nf nativeFlags
	var flow string
	var force bool
	var o tokenOptions
	cmd := &cobra.Command{
		Use:     "login",
		GroupID: "tokens",
		Short:   "Log in: make sure the profile can hand out tokens (refresh, else device flow)",
		Long: `Make sure the profile has a usable session and a fresh access token in the cache.

When the cached access token is still valid beyond --min-valid, login says so and
stops. Otherwise the stored refresh token is used; when the provider no longer
accepts it (or there is none), the profile's login flow runs:

  device              (the default) shows a URL, a code, a QR code and a countdown;
                      approve in a browser on any device. --headless prints the URL and
                      code without a terminal and waits (a person approves elsewhere).
  password            asks for the user name and password (only for clients an IAM
                      administrator enabled for it). The password is never stored.
  client-credentials  robots and services: the client's own credentials, no person.

--flow runs that flow now, even when a refresh would do (e.g. after widening the
profile's scopes). Without a terminal, login fails at once with the command to run:
it never waits for input that cannot come.

The refresh token and client secret are stored encrypted; the passphrase comes from
--pw-env/--pw-file/--pw-cmd, the profile's passphrase_* settings, the unlock cache
(kernel keyring, unlock_for, default 12h) or a prompt.`,
		Example: `  tokenhelper login -p wlcg
  tokenhelper login -p wlcg --flow device        # log in again with the device flow
  tokenhelper login -p wlcg --headless --pw-env WLCG_PASSPHRASE
  tokenhelper login -p robot --flow client-credentials`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			ctx := cmd.Context()
			p, err := a.profile()
			if err != nil {
				return err
			}
			if p == nil {
				return helper.Errorf(helper.KindNoProfile, "no profile to log in with").
					WithFix("register one: tokenhelper register --issuer wlcg (a preset name or the issuer URL)")
			}
			var lg helper.Loginer
			if p.Backend == config.BackendNative {
				be, err := a.nativeBackend(p, &nf)
				if err != nil {
					return err
				}
				lg = be
			} else {
				be, _, err := plugins.Open(p, a.deps())
				if err != nil {
					return err
				}
				var ok bool
				if lg, ok = be.(helper.Loginer); !ok {
					return helper.Errorf(helper.KindUsage, "profile %q (backend %s) has no login of its own", p.Name, p.Backend).
						WithFix("log in with the backend's own tool (oidc-agent: oidc-add %s)", p.Account)
				}
			}
			req := a.request(p, o)
			if !force && flow == "" {
				if tok := a.cachedToken(ctx, req); tok != nil {
					fmt.Fprintf(a.stderr(), "Profile %q: the cached access token is still valid for %s (tokenhelper login --force gets a new one).\n",
						p.Name, jwtinfo.FormatTTL(tok.ValidFor(a.sys.Now())))
					return nil
				}
			}
			tok, err := lg.Login(ctx, helper.LoginRequest{Request: req, Flow: flow, UI: lineUI{UI: a.ui(), in: a.sys.Stdin}})
			if err != nil {
				return err
			}
			a.storeLoginToken(ctx, req, tok)
			return nil
		}),
	}
	nf.registerPassphrase(cmd)
	nf.registerLogin(cmd)
	f := cmd.Flags()
	f.StringVar(&flow, "flow", "", "run this login flow now: device, password or client-credentials")
	f.BoolVar(&force, "force", false, "get a new access token even if the cached one is still valid")
	f.DurationVar(&o.minValid, "min-valid", 0, "a cached token valid at least this long is kept (default: profile min_valid, else 1m)")
	_ = cmd.RegisterFlagCompletionFunc("flow", cobra.FixedCompletions([]string{config.FlowDevice, config.FlowPassword, config.FlowClientCredentials}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// storeLoginToken caches a token a login produced and says how long it
// is valid.
func (a *app) storeLoginToken(ctx context.Context, req helper.Request, tok *helper.Token) {
	if tok == nil {
		return
	}
	if tok.Profile == "" {
		tok.Profile = req.Profile
	}
	where := "cached"
	if err := a.tokenCache().Put(ctx, req, tok); err != nil {
		a.log.Warn("the new access token could not be cached", "error", oneLine(err.Error()))
		where = "obtained (not cached: " + oneLine(err.Error()) + ")"
	}
	valid := "of unknown validity"
	if !tok.Expiry.IsZero() {
		valid = "valid for " + jwtinfo.FormatTTL(tok.ValidFor(a.sys.Now()))
	}
	fmt.Fprintf(a.stderr(), "A fresh access token was %s; it is %s.\n", where, valid)
}
