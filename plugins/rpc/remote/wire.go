package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// WireVersion is the version of the Call/Reply exchange between
// tokenhelper and tokenhelper-pluginhost. Both are installed together; a
// companion from another release refuses the call with a clear error.
const WireVersion = 1

// MaxMessage bounds one Call or Reply (bytes).
const MaxMessage = 1 << 20

// The operations a Call asks for.
const (
	OpToken  = "token"
	OpLogin  = "login"
	OpLogout = "logout"
	OpStatus = "status"
	OpInfo   = "info"
)

// Target is what runs in the other process: a built-in backend isolated
// in its own process, or an external plugin executable.
type Target struct {
	// Name is the backend name (the NAME of tokenhelper-plugin-NAME).
	Name string `json:"name"`
	// Builtin: serve the built-in backend Name (isolate = true).
	Builtin bool `json:"builtin,omitempty"`
	// Path of the plugin executable (external plugins).
	Path string `json:"path,omitempty"`
	// SHA256 pinned in [plugins.NAME] (hex); "" when not pinned.
	SHA256 string `json:"sha256,omitempty"`
}

// String names the target for messages: `plugin "command" (/path)` or
// `isolated backend "file"`.
func (t Target) String() string {
	if t.Builtin {
		return fmt.Sprintf("isolated backend %q", t.Name)
	}
	return fmt.Sprintf("plugin %q (%s)", t.Name, t.Path)
}

// Host is what a plugin takes from the tokenhelper process that started
// it. The plugin inherits the environment; these are the values the CLI
// resolved from flags and configuration.
type Host struct {
	Dirs config.Dirs `json:"dirs"`
	// UID is the user id in WLCG discovery file names (bt_u$UID).
	UID int `json:"uid"`
	// TmpDir stands for /tmp in discovery file names.
	TmpDir string `json:"tmp_dir"`
	// Verbose is the -v count.
	Verbose int `json:"verbose"`
	// Version is the tokenhelper version.
	Version string `json:"version"`
}

// Call is one request to tokenhelper-pluginhost.
type Call struct {
	Wire    int             `json:"wire"`
	Op      string          `json:"op"`
	Target  Target          `json:"target"`
	Profile *config.Profile `json:"profile,omitempty"`
	Host    Host            `json:"host"`
	// Request for OpToken and OpLogin.
	Request *helper.Request `json:"request,omitempty"`
	// Flow for OpLogin.
	Flow string `json:"flow,omitempty"`
	// Logout for OpLogout.
	Logout *Logout `json:"logout,omitempty"`
	// Timeout bounds the whole call, plugin start included; 0 means no
	// deadline (a login waiting for a person).
	Timeout time.Duration `json:"timeout"`
}

// Logout carries a helper.LogoutRequest without its UI.
type Logout struct {
	Profile string `json:"profile"`
	Forget  bool   `json:"forget"`
}

// Info describes a plugin.
type Info struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Login   bool   `json:"login"`
	Logout  bool   `json:"logout"`
	Status  bool   `json:"status"`
}

// Status is helper.Status on the wire.
type Status struct {
	Backend       string    `json:"backend"`
	OK            bool      `json:"ok"`
	Lines         []string  `json:"lines,omitempty"`
	SessionExpiry time.Time `json:"session_expiry,omitzero"`
}

// Reply is tokenhelper-pluginhost's answer to a Call: exactly one of the
// result fields or Error.
type Reply struct {
	Wire   int           `json:"wire"`
	Token  *helper.Token `json:"token,omitempty"`
	Status *Status       `json:"status,omitempty"`
	Info   *Info         `json:"info,omitempty"`
	Error  *Error        `json:"error,omitempty"`
}

// Error is a *helper.Error on the wire.
type Error struct {
	Kind helper.Kind `json:"kind"`
	Msg  string      `json:"msg"`
	Fix  string      `json:"fix,omitempty"`
	// Unsupported: the backend does not implement the operation.
	Unsupported bool `json:"unsupported,omitempty"`
}

// MaxText bounds a message or fix crossing a process boundary.
const MaxText = 1000

// ErrorOf converts any error for the wire. A *helper.Error keeps its kind,
// message and fix; errors.ErrUnsupported marks the operation unsupported;
// context deadlines become KindUnavailable; anything else is
// KindInternal with the error's text, as it would be in-process.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	out := &Error{Unsupported: errors.Is(err, errors.ErrUnsupported)}
	var he *helper.Error
	switch {
	case errors.As(err, &he):
		out.Kind, out.Msg, out.Fix = he.Kind, he.Msg, he.Fix
		if out.Msg == "" && he.Err != nil {
			out.Msg = he.Err.Error()
		}
	case errors.Is(err, errors.ErrUnsupported):
		out.Kind, out.Msg = helper.KindUsage, err.Error()
	default:
		out.Kind, out.Msg = helper.KindInternal, err.Error()
	}
	out.Msg, out.Fix = Clean(out.Msg), Clean(out.Fix)
	return out
}

// Err turns a wire error back into a *helper.Error. An unknown kind
// becomes KindUnavailable (the plugin is failing); an unsupported
// operation wraps errors.ErrUnsupported.
func (e *Error) Err() error {
	if e == nil {
		return nil
	}
	k := e.Kind
	if k < helper.KindInternal || k > helper.KindNoProfile {
		k = helper.KindUnavailable
	}
	out := &helper.Error{Kind: k, Msg: Clean(e.Msg), Fix: Clean(e.Fix)}
	if out.Msg == "" {
		out.Msg = "the backend failed without saying why"
	}
	if e.Unsupported {
		out.Err = errors.ErrUnsupported
	}
	return out
}

// Clean makes text from another process safe to show: one line, no
// control characters, valid UTF-8, at most MaxText bytes.
func Clean(s string) string {
	if s == "" {
		return ""
	}
	s = flatten(s)
	if len(s) > MaxText {
		cut := MaxText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// StatusOf converts a helper.Status for the wire.
func StatusOf(s helper.Status) *Status {
	return &Status{Backend: s.Backend, OK: s.OK, Lines: s.Lines, SessionExpiry: s.SessionExpiry}
}

// Helper converts a wire status back, cleaning its lines.
func (s *Status) Helper() helper.Status {
	out := helper.Status{Backend: Clean(s.Backend), OK: s.OK, SessionExpiry: s.SessionExpiry}
	for _, l := range s.Lines {
		out.Lines = append(out.Lines, Clean(l))
	}
	return out
}

// DecodeCall parses and checks a Call.
func DecodeCall(data []byte) (*Call, error) {
	var c Call
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "tokenhelper-pluginhost: cannot decode the call: "+Clean(err.Error()))
	}
	if c.Wire != WireVersion {
		return nil, helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost speaks wire version %d, tokenhelper sent %d", WireVersion, c.Wire).
			WithFix("install tokenhelper and tokenhelper-pluginhost from the same release")
	}
	switch c.Op {
	case OpToken, OpLogin:
		if c.Request == nil {
			return nil, helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: %s call without a request", c.Op)
		}
	case OpLogout:
		if c.Logout == nil {
			return nil, helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: logout call without arguments")
		}
	case OpStatus, OpInfo:
	default:
		return nil, helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: unknown operation %q", Clean(c.Op))
	}
	if c.Op != OpInfo && c.Profile == nil {
		return nil, helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: %s call without a profile", c.Op)
	}
	if c.Target.Name == "" || (!c.Target.Builtin && c.Target.Path == "") {
		return nil, helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: call without a target")
	}
	return &c, nil
}

// flatten is Clean without its length limit: valid UTF-8, control
// characters as spaces, runs of white space as one space, trimmed.
func flatten(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
