// Package file is the cached-file backend: it serves a token kept in a file
// (written by a cron job, HTCondor, `tokenhelper export`, another tool) or,
// with no file configured, the token WLCG Bearer Token Discovery finds
// (WLCG-AuthZ-WG bearer-token-discovery). It never obtains tokens itself:
// it checks what is there against the request (expiry beyond min-valid,
// scopes, audiences) and refuses a token file that others can read, as the
// xrootd client does.
package file

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

// Env is what the backend takes from the process.
type Env struct {
	LookupEnv func(string) (string, bool)
	UID       int
	TmpDir    string
	Now       func() time.Time
}

// Backend serves a token from a file or from discovery.
type Backend struct {
	profile string
	path    string
	env     Env
}

// New returns the backend for profile p (p.TokenFile "" = discovery).
func New(p *config.Profile, env Env) *Backend {
	if env.Now == nil {
		env.Now = time.Now
	}
	b := &Backend{env: env}
	if p != nil {
		b.profile = p.Name
		b.path = p.TokenFile
	}
	return b
}

func (b *Backend) denv() discovery.Env {
	return discovery.Env{LookupEnv: b.env.LookupEnv, UID: b.env.UID, TmpDir: b.env.TmpDir}
}

// Token implements helper.Backend.
func (b *Backend) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	var res *discovery.Result
	var err error
	if b.path != "" {
		res, err = discovery.ReadFile(b.denv(), b.path)
	} else {
		res, err = discovery.Find(b.denv())
	}
	if err != nil {
		return nil, err
	}
	where := res.Label()
	if res.Path != "" && res.Mode.Perm()&0o077 != 0 {
		return nil, helper.Errorf(helper.KindUnsafe, "token file %s is open to other users (mode %04o); xrootd refuses such files too", res.Path, res.Mode.Perm()).
			WithFix("chmod 600 %s", res.Path)
	}
	tok := &helper.Token{AccessToken: res.Token, Profile: req.Profile, Source: where}
	info, err := jwtinfo.Parse(res.Token)
	if err != nil {
		return nil, err
	}
	if info.IsJWT {
		tok.Expiry = info.Expiry
		tok.Issuer = info.Issuer
		tok.Scopes = info.Scopes
		tok.Audiences = info.Audiences
		if missing := missingScopes(info.Scopes, req.Scopes); len(missing) > 0 {
			return nil, helper.Errorf(helper.KindNoToken, "the token from %s lacks scope %s", where, strings.Join(missing, " ")).
				WithFix("%s", b.renewHint())
		}
		if len(req.Audiences) > 0 && !audienceOK(info.Audiences, req.Audiences) {
			return nil, helper.Errorf(helper.KindNoToken, "the token from %s is for audience %s, not %s", where, strings.Join(info.Audiences, " "), strings.Join(req.Audiences, " ")).
				WithFix("%s", b.renewHint())
		}
	}
	now := b.env.Now()
	if !tok.ValidBeyond(now, req.MinValid) {
		left := tok.ValidFor(now)
		var msg string
		if left <= 0 {
			msg = fmt.Sprintf("the token from %s expired %s ago", where, jwtinfo.FormatTTL(-left))
		} else {
			msg = fmt.Sprintf("the token from %s expires in %s, less than min-valid %s", where, jwtinfo.FormatTTL(left), req.MinValid)
		}
		return nil, helper.Errorf(helper.KindNoToken, "%s", msg).WithFix("%s", b.renewHint())
	}
	return tok, nil
}

func (b *Backend) renewHint() string {
	if b.path != "" {
		return "renew " + b.path + " (whatever writes it), or point profile " + quote(b.profile) + " at a backend that can get tokens"
	}
	return "get a fresh token, e.g. tokenhelper export -p PROFILE, or configure a profile (tokenhelper config example)"
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Status implements helper.Statuser.
func (b *Backend) Status(ctx context.Context) (helper.Status, error) {
	st := helper.Status{Backend: config.BackendFile}
	tok, err := b.Token(ctx, helper.Request{Profile: b.profile})
	if err != nil {
		st.Lines = append(st.Lines, oneLine(err))
		return st, nil
	}
	st.OK = true
	line := "token from " + tok.Source
	if !tok.Expiry.IsZero() {
		line += ", valid for " + jwtinfo.FormatTTL(tok.Expiry.Sub(b.env.Now()))
	}
	st.Lines = append(st.Lines, line)
	return st, nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// missingScopes returns the requested scopes the token does not cover.
func missingScopes(have, want []string) []string {
	var missing []string
	for _, w := range want {
		ok := false
		for _, h := range have {
			if ScopeCovers(h, w) {
				ok = true
				break
			}
		}
		if !ok {
			missing = append(missing, w)
		}
	}
	return missing
}

// ScopeCovers reports whether a token holding scope have may act as one
// holding want: equal scopes, or WLCG storage scopes where have's path is a
// prefix of want's on a segment boundary and have's authorization implies
// want's (modify ⊃ create, stage ⊃ read).
func ScopeCovers(have, want string) bool {
	if have == want {
		return true
	}
	ha, hp, ok1 := strings.Cut(have, ":")
	wa, wp, ok2 := strings.Cut(want, ":")
	if !ok1 || !ok2 || !strings.HasPrefix(ha, "storage.") || !strings.HasPrefix(wa, "storage.") {
		return false
	}
	if !impliesAuthz(ha, wa) {
		return false
	}
	hp = strings.TrimSuffix(hp, "/")
	wp = strings.TrimSuffix(wp, "/")
	return hp == "" || wp == hp || strings.HasPrefix(wp, hp+"/")
}

// impliesAuthz reports whether the storage authorization have grants want:
// equal, modify ⊃ create, stage ⊃ read.
func impliesAuthz(have, want string) bool {
	return have == want || have == "storage.modify" && want == "storage.create" || have == "storage.stage" && want == "storage.read"
}

func audienceOK(have, want []string) bool {
	for _, h := range have {
		if h == jwtinfo.AnyAudience {
			return true
		}
		for _, w := range want {
			if strings.TrimSuffix(h, "/") == strings.TrimSuffix(w, "/") {
				return true
			}
		}
	}
	return false
}
