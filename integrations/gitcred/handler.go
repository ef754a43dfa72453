package gitcred

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// The actions git (and people) run a helper with.
const (
	ActionGet        = "get"
	ActionStore      = "store"
	ActionErase      = "erase"
	ActionCapability = "capability"
)

// DefaultUsername is the user name sent with a token as Basic password
// when neither git nor the profile names one.
const DefaultUsername = config.DefaultUsername

// Answer is what a Source hands out for a URL.
type Answer struct {
	// Token is the access token; its Expiry (when known) becomes
	// password_expiry_utc.
	Token *helper.Token
	// Username goes with the token when git can only send Basic
	// authentication; "" means DefaultUsername.
	Username string
}

// Source finds the token for a URL. The CLI implements it with the
// configuration's routes and the token cache; tests with a fake.
type Source interface {
	// Token returns the token to send to t, or (nil, nil) when nothing
	// serves t: the helper then declines silently. Errors are
	// *helper.Error values saying what to do (log in, fix the config,
	// set credential.useHttpPath).
	Token(ctx context.Context, t config.RouteTarget) (*Answer, error)
	// Forget is called when git reports that the server refused secret
	// for t (git credential erase). If secret is the token the Source
	// would hand out for t from its cache, it drops it there so that the
	// next Token brings a new one, and reports true. Anything else —
	// another helper's password, a URL nothing serves — is left alone.
	Forget(ctx context.Context, t config.RouteTarget, secret string) (bool, error)
}

// Handler runs one helper action.
type Handler struct {
	Source Source
	// Notices, when not nil, receives one-line messages for the person
	// (git passes a helper's stderr through), e.g. that a refused token
	// was dropped. Never token material.
	Notices io.Writer
}

// Handle runs action with the record on in and the answer on out.
// Unknown actions are ignored, as gitcredentials(7) asks of helpers. On
// any error nothing has been written to out, so git sees a decline.
func (h *Handler) Handle(ctx context.Context, action string, in io.Reader, out io.Writer) error {
	switch action {
	case ActionGet:
		return h.get(ctx, in, out)
	case ActionErase:
		return h.erase(ctx, in)
	case ActionStore:
		// The tokens are already stored where they belong (the token
		// cache, the agent, the token file); keeping git's copy would only
		// keep a token past its life. Drain the record so git never sees
		// a broken pipe.
		_, err := io.Copy(io.Discard, io.LimitReader(in, MaxRecord))
		if err != nil {
			return helper.Wrap(helper.KindInternal, err, "cannot read the git credential input")
		}
		return nil
	case ActionCapability:
		return WriteCapabilities(out)
	}
	return nil
}

// WriteCapabilities answers the capability action (git ≥ 2.46): the
// protocol version and the capabilities this helper supports.
func WriteCapabilities(out io.Writer) error {
	_, err := io.WriteString(out, "version 0\ncapability "+CapAuthtype+"\n")
	return err
}

func (h *Handler) get(ctx context.Context, in io.Reader, out io.Writer) error {
	c, err := Parse(in)
	if err != nil {
		return err
	}
	t, ok, err := c.Target()
	if err != nil || !ok {
		return err
	}
	a, err := h.Source.Token(ctx, t)
	if err != nil {
		return err
	}
	if a == nil || a.Token == nil || a.Token.AccessToken == "" {
		return nil
	}
	return WriteRecord(out, c.Answer(a))
}

func (h *Handler) erase(ctx context.Context, in io.Reader) error {
	c, err := Parse(in)
	if err != nil {
		return err
	}
	secret := c.Secret()
	if secret == "" {
		return nil
	}
	t, ok, err := c.Target()
	if err != nil || !ok {
		return err
	}
	forgot, err := h.Source.Forget(ctx, t, secret)
	if err != nil {
		return err
	}
	if forgot && h.Notices != nil {
		fmt.Fprintf(h.Notices, "tokenhelper: %s refused the token; dropped it from the token cache, the next attempt gets a new one\n", describe(c))
	}
	return nil
}

// describe names the URL of a record for messages (no user name, no
// password).
func describe(c *Credential) string {
	s := strings.Map(printable, c.Protocol) + "://" + strings.Map(printable, c.Host)
	if c.HasPath {
		s += "/" + strings.Map(printable, c.Path)
	}
	return s
}

// Answer is the reply to the get request c for a: the Bearer form when git
// announced the authtype capability (unless the server offered only Basic
// authentication), else user name and password. The user name is the one
// git already has, else a.Username, else DefaultUsername.
func (c *Credential) Answer(a *Answer) []Attr {
	tok := a.Token
	var attrs []Attr
	capable := c.HasCapability(CapAuthtype)
	if capable {
		attrs = append(attrs, Attr{"capability[]", CapAuthtype})
	}
	if capable && wantsBearer(c.WWWAuth) {
		attrs = append(attrs, Attr{"authtype", "Bearer"}, Attr{"credential", tok.AccessToken})
	} else {
		user := c.Username
		if user == "" {
			user = a.Username
		}
		if user == "" {
			user = DefaultUsername
		}
		attrs = append(attrs, Attr{"username", user}, Attr{"password", tok.AccessToken})
	}
	if capable {
		attrs = append(attrs, Attr{"ephemeral", "1"})
	}
	if !tok.Expiry.IsZero() {
		attrs = append(attrs, Attr{"password_expiry_utc", strconv.FormatInt(tok.Expiry.Unix(), 10)})
	}
	return attrs
}

// wantsBearer reports whether a token should go as Bearer given the
// server's WWW-Authenticate challenges: yes unless the server offered
// Basic and not Bearer.
func wantsBearer(wwwauth []string) bool {
	basic, bearer := false, false
	for _, v := range wwwauth {
		for _, s := range challengeSchemes(v) {
			switch strings.ToLower(s) {
			case "basic":
				basic = true
			case "bearer":
				bearer = true
			}
		}
	}
	return bearer || !basic
}

// challengeSchemes returns the auth-scheme names in a WWW-Authenticate
// value (RFC 9110 §11.6.1): tokens at the start or after a comma that are
// not followed by "=" (which would make them an auth-param name). Quoted
// strings are skipped.
func challengeSchemes(v string) []string {
	var out []string
	start := true
	for i := 0; i < len(v); {
		switch ch := v[i]; {
		case ch == '"':
			i++
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' {
					i++
				}
				i++
			}
			i++
			start = false
		case ch == ',':
			i++
			start = true
		case ch == ' ' || ch == '\t':
			i++
		case isTokenChar(ch):
			j := i
			for j < len(v) && isTokenChar(v[j]) {
				j++
			}
			k := j
			for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
				k++
			}
			if start && (k >= len(v) || v[k] != '=') {
				out = append(out, v[i:j])
			}
			i = j
			start = false
		default:
			i++
			start = false
		}
	}
	return out
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
