package cli

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/oidcagent"
)

// DefaultMinValid is how long a handed-out token must at least stay valid
// when neither --min-valid nor the profile's min_valid says otherwise.
const DefaultMinValid = time.Minute

// DefaultTimeout bounds one backend call when the profile sets no timeout.
const DefaultTimeout = 30 * time.Second

type cfgState struct {
	cfg  *config.Config
	dirs config.Dirs
}

// config loads the configuration once per invocation.
func (a *app) config() (*config.Config, config.Dirs, error) {
	if a.cfg != nil {
		return a.cfg.cfg, a.cfg.dirs, nil
	}
	dirs, err := config.ResolveDirs(a.sys.Getenv)
	if err != nil {
		return nil, dirs, err
	}
	path, explicit := dirs.ConfigFile, dirs.ConfigExplicit
	if a.configFlag != "" {
		path, explicit = a.configFlag, true
	}
	cfg, err := config.LoadOptions{Path: path, Explicit: explicit, UID: a.sys.UID}.Load()
	if err != nil {
		return nil, dirs, err
	}
	dirs = dirs.WithConfig(cfg)
	dirs.ConfigFile = path
	a.cfg = &cfgState{cfg: cfg, dirs: dirs}
	a.log.Debug("configuration", "file", path, "profiles", len(cfg.Profiles))
	return cfg, dirs, nil
}

// profile selects the profile for this invocation (nil: none configured
// and none named; callers fall back to discovery or zero-config).
func (a *app) profile() (*config.Profile, error) {
	cfg, _, err := a.config()
	if err != nil {
		return nil, err
	}
	return cfg.Select(a.profileFlag, a.sys.Getenv(config.EnvProfile))
}

func (a *app) deps() plugins.Deps {
	cfg, dirs, _ := a.config()
	d := plugins.Deps{
		LookupEnv: a.sys.LookupEnv,
		Dirs:      dirs,
		Now:       a.sys.Now,
		UID:       a.sys.UID,
		TmpDir:    a.sys.TmpDir,
		Log:       a.log,
		UI:        a.ui(),
		Environ:   a.sys.Environ,
		Verbose:   a.verbose,
	}
	if cfg != nil {
		d.Plugins = cfg.Plugins
	}
	return d
}

func (a *app) discoveryEnv() discovery.Env {
	return discovery.Env{LookupEnv: a.sys.LookupEnv, UID: a.sys.UID, TmpDir: a.sys.TmpDir}
}

func (a *app) tokenCache() *cache.Cache {
	_, dirs, _ := a.config()
	return &cache.Cache{
		Dir: filepath.Join(dirs.CacheDir, "tokens"),
		Now: a.sys.Now,
		Log: func(format string, args ...any) { a.log.Info("cache: " + sprintf(format, args...)) },
	}
}

// tokenOptions are the per-request flags shared by token, header, export,
// exec, curl and the integrations.
type tokenOptions struct {
	scopes    []string
	audiences []string
	minValid  time.Duration
	minSet    bool
	force     bool
}

func (o *tokenOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&o.scopes, "scope", "s", nil, "scope to request (repeatable; default: the profile's scopes)")
	f.StringArrayVar(&o.audiences, "aud", nil, "audience to request (repeatable; default: the profile's audiences)")
	f.DurationVar(&o.minValid, "min-valid", 0, "the token must stay valid at least this long (default: profile min_valid, else 1m)")
	f.BoolVar(&o.force, "force", false, "get a new token even if the cached one is still valid")
}

func (o *tokenOptions) resolve(cmd *cobra.Command) {
	o.minSet = cmd.Flags().Changed("min-valid")
}

// request builds the token request for profile p (nil: discovery).
func (a *app) request(p *config.Profile, o tokenOptions) helper.Request {
	req := helper.Request{
		Scopes:      o.scopes,
		Audiences:   o.audiences,
		MinValid:    DefaultMinValid,
		Force:       o.force,
		Interactive: a.sys.Interactive(),
	}
	if p != nil {
		req.Profile = p.Name
		if len(req.Scopes) == 0 {
			req.Scopes = p.Scopes
		}
		if len(req.Audiences) == 0 {
			req.Audiences = p.Audiences
		}
		if p.MinValid > 0 {
			req.MinValid = p.MinValid.D()
		}
	}
	if o.minSet {
		req.MinValid = o.minValid
	}
	return req.Normalized()
}

// discoveryProfile stands for "no profile": WLCG discovery through the
// file backend.
func discoveryProfile() *config.Profile {
	return &config.Profile{Name: "", Backend: config.BackendFile}
}

// acquire gets a token for req from profile p through the cache when the
// backend is cached. The backend is only constructed on a cache miss, so
// the warm path initializes nothing it does not use.
func (a *app) acquire(ctx context.Context, p *config.Profile, req helper.Request) (*helper.Token, error) {
	b, err := plugins.Resolve(p)
	if err != nil {
		return nil, err
	}
	timeout := DefaultTimeout
	if p.Timeout > 0 {
		timeout = p.Timeout.D()
	}
	call := func(ctx context.Context) (*helper.Token, error) {
		be, _, err := plugins.Open(p, a.deps())
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		a.log.Info("asking backend", "profile", p.Name, "backend", p.Backend, "scopes", strings.Join(req.Scopes, " "), "audiences", strings.Join(req.Audiences, " "))
		tok, err := be.Token(ctx, req)
		if err != nil {
			return nil, err
		}
		if tok.Profile == "" {
			tok.Profile = p.Name
		}
		return tok, nil
	}
	var tok *helper.Token
	if b.Cached || (b.CacheDownscoped && (len(req.Scopes) > 0 || len(req.Audiences) > 0)) {
		tok, err = a.tokenCache().Get(ctx, req, call)
	} else {
		tok, err = call(ctx)
	}
	if err != nil {
		return nil, err
	}
	if tok.AccessToken == "" || !helper.IsB64Token(tok.AccessToken) {
		return nil, helper.Errorf(helper.KindUnavailable, "backend %s of profile %q returned something that is not a bearer token", p.Backend, p.Name)
	}
	if !tok.ValidBeyond(a.sys.Now(), req.MinValid) {
		return nil, helper.LoginNeeded(p.Name, "the token from profile "+quoteName(p.Name)+" expires within min-valid "+req.MinValid.String())
	}
	a.log.Info("token", "profile", p.Name, "source", tok.Source, "fingerprint", helper.Fingerprint(tok.AccessToken), "expiry", tok.Expiry)
	return tok, nil
}

func quoteName(s string) string {
	if s == "" {
		return "(discovery)"
	}
	return `"` + s + `"`
}

// token is the whole pipeline: select the profile, build the request,
// acquire through the cache.
func (a *app) token(ctx context.Context, o tokenOptions) (*helper.Token, *config.Profile, error) {
	p, err := a.profile()
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		p, err = a.zeroConfig(ctx)
		if err != nil {
			return nil, nil, err
		}
	}
	req := a.request(p, o)
	tok, err := a.acquire(ctx, p, req)
	return tok, p, err
}

// zeroConfig picks what `token` uses when no profile is configured or
// named: with OIDC_SOCK (or OIDC_REMOTE_SOCK) set, the running
// oidc-agent's single loaded account; otherwise WLCG discovery.
func (a *app) zeroConfig(ctx context.Context) (*config.Profile, error) {
	if a.sys.Getenv(oidcagent.EnvSock) == "" && a.sys.Getenv(oidcagent.EnvRemoteSock) == "" {
		return discoveryProfile(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidcagent.ZeroConfig(ctx, a.deps().OIDCAgentEnv())
	if err != nil {
		return nil, err
	}
	a.log.Info("no profile configured: using the oidc-agent account", "account", p.Account)
	return p, nil
}
