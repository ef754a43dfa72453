// Package command is the backend of the external plugin
// tokenhelper-plugin-command: it runs the profile's command, which prints
// an access token, and checks what it printed. It bridges whatever a site
// already has — htgettoken, mytoken, `oidc-token NAME`, a site script —
// into every tool tokenhelper serves.
//
// The command (profile key command) runs as a list of words (split on
// blanks, looked up in PATH) when it contains no shell metacharacter, else
// as /bin/sh -c COMMAND. It runs in its own process group with stdin
// /dev/null (it must not prompt) and the profile's timeout (default 30 s,
// and never beyond the caller's deadline); at the deadline the whole group
// is killed. Besides tokenhelper's environment it gets:
//
//	TOKENHELPER_PROFILE    the profile name
//	TOKENHELPER_SCOPES     requested scopes, space-separated ("" = the command's defaults)
//	TOKENHELPER_AUDIENCES  requested audiences, space-separated
//	TOKENHELPER_MIN_VALID  seconds the token must still be valid
//	TOKENHELPER_FORCE      1 when a new token is wanted (--force), else 0
//	TOKENHELPER_OPTION_K   each [profiles.NAME.options] entry K (upper-cased, "_" for other characters)
//
// It must print, on stdout (at most MaxOutput bytes), either the bare
// token or a JSON object with access_token and optionally expires_in
// (seconds), expires_at (Unix seconds or RFC 3339), issuer and scope. The
// expiry is taken from there, else from the token's exp claim when it is
// a JWT. The token must be an RFC 6750 b64token still valid beyond the
// request's min-valid. Nothing the command prints on stdout ever appears
// in an error; the last line of its stderr does, with token-like words
// redacted. An exit status listed in the option login_exit_codes (for
// example "4") means a person must log in: KindLoginNeeded, with the
// option login_hint as the fix.
package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Name is the backend name: profiles say backend = "command".
const Name = "command"

// DefaultTimeout bounds the command when the profile sets no timeout.
const DefaultTimeout = 30 * time.Second

// MaxOutput bounds what the command may print on stdout.
const MaxOutput = 64 << 10

// The [profiles.NAME.options] keys the backend reads.
const (
	// OptionLoginExitCodes lists exit statuses meaning "log in first"
	// (comma-separated, e.g. "4" or "1,4").
	OptionLoginExitCodes = "login_exit_codes"
	// OptionLoginHint is the fix shown with such a status (e.g.
	// "run: htgettoken -a vault.example.org").
	OptionLoginHint = "login_hint"
)

// Env is what the backend takes from the process.
type Env struct {
	// Environ is the command's base environment (nil: empty).
	Environ func() []string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// OSEnv is the real process environment.
func OSEnv() Env { return Env{Environ: os.Environ, Now: time.Now} }

// Backend runs one profile's command.
type Backend struct {
	profile    string
	command    string
	argv       []string // nil: run through /bin/sh -c
	prog       string   // the program's name, quoted, for messages
	timeout    time.Duration
	loginCodes map[int]bool
	loginHint  string
	options    map[string]string
	env        Env
}

var (
	_ helper.Backend  = (*Backend)(nil)
	_ helper.Statuser = (*Backend)(nil)
)

// New returns the backend of profile p. It fails (KindConfig) when the
// profile has no command or a bad option.
func New(p *config.Profile, env Env) (*Backend, error) {
	if p == nil {
		return nil, helper.Errorf(helper.KindConfig, "the command plugin was started without a profile")
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	b := &Backend{profile: p.Name, command: strings.TrimSpace(p.Command), timeout: p.Timeout.D(), env: env, options: p.Options, loginHint: p.Options[OptionLoginHint]}
	if b.command == "" {
		return nil, helper.Errorf(helper.KindConfig, "profile %q uses the command backend but sets no command", p.Name).
			WithFix(`set command = "oidc-token NAME" (or any command printing a token) in [profiles.%s]`, p.Name)
	}
	if b.timeout <= 0 {
		b.timeout = DefaultTimeout
	}
	if !hasShellSyntax(b.command) {
		b.argv = strings.Fields(b.command)
	}
	if f := strings.Fields(b.command); len(f) > 0 {
		// Messages name the program only: the rest of the command line
		// may hold things not meant for logs.
		b.prog = strconv.Quote(filepath.Base(f[0]))
		if len(f) > 1 {
			b.prog = strconv.Quote(filepath.Base(f[0]) + " …")
		}
	}
	if s := p.Options[OptionLoginExitCodes]; s != "" {
		b.loginCodes = map[int]bool{}
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > 255 {
				return nil, helper.Errorf(helper.KindConfig, "profile %q: options.%s: %q is not an exit status (1-255)", p.Name, OptionLoginExitCodes, remote.Clean(f)).
					WithFix(`write the statuses comma-separated, e.g. %s = "4"`, OptionLoginExitCodes)
			}
			b.loginCodes[n] = true
		}
	}
	return b, nil
}

// hasShellSyntax reports whether s needs a shell: anything but words of
// plain characters separated by blanks.
func hasShellSyntax(s string) bool {
	return strings.ContainsAny(s, "|&;<>()$`\\\"'*?[]#~=%{}!\n\r")
}

// Shell reports whether the backend runs its command through /bin/sh.
func (b *Backend) Shell() bool { return b.argv == nil }

// Token runs the command and returns the token it printed.
func (b *Backend) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var cmd *exec.Cmd
	if b.argv != nil {
		cmd = exec.CommandContext(ctx, b.argv[0], b.argv[1:]...)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", b.command)
	}
	stdout := &limited{max: MaxOutput}
	stderr := &remote.Tail{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = b.environ(req)
	cmd.WaitDelay = time.Second
	ownProcessGroup(cmd)
	started := time.Now()
	runErr := run(ctx, cmd)
	took := time.Since(started)
	out := stdout.Bytes()
	secrets := []string{string(bytes.TrimSpace(out))}
	line := func(msg string) string {
		if l := stderr.LastLine(secrets...); l != "" {
			return msg + ": " + l
		}
		return msg
	}
	if runErr != nil {
		return nil, b.runError(ctx, runErr, took, line)
	}
	if stdout.over {
		return nil, helper.Errorf(helper.KindUnavailable, "command %s printed more than %d KiB", b.prog, MaxOutput>>10).
			WithFix("make it print only the token (or a JSON object with access_token)")
	}
	tok, err := b.parse(out)
	if err != nil {
		var he *helper.Error
		if errors.As(err, &he) && len(bytes.TrimSpace(out)) == 0 {
			he.Msg = line(he.Msg)
		}
		return nil, err
	}
	tok.Profile = req.Profile
	now := b.env.Now()
	if !tok.ValidBeyond(now, req.MinValid) {
		left := tok.ValidFor(now)
		msg := fmt.Sprintf("command %s printed a token that expired %s ago", b.prog, jwtinfo.FormatTTL(-left))
		if left > 0 {
			msg = fmt.Sprintf("command %s printed a token that expires in %s, less than min-valid %s", b.prog, jwtinfo.FormatTTL(left), req.MinValid)
		}
		return nil, helper.Errorf(helper.KindNoToken, "%s", msg).
			WithFix("make the command return a fresh token (it gets TOKENHELPER_MIN_VALID and TOKENHELPER_FORCE), or lower min_valid in [profiles.%s]", b.profile)
	}
	return tok, nil
}

// run runs cmd, made with exec.CommandContext(ctx, ...), and kills its
// process group when ctx ends first; then the error is ctx's.
func run(ctx context.Context, cmd *exec.Cmd) error {
	killed := false
	cmd.Cancel = func() error {
		killed = true // read after Run returns: Wait waits for Cancel
		killGroup(cmd)
		return nil
	}
	err := cmd.Run()
	switch {
	case killed:
		return ctx.Err()
	case err == nil:
		return nil
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited successfully, but something it started in the
		// background still holds stdout: what it printed is read.
		return nil
	}
	return err
}

func (b *Backend) runError(ctx context.Context, err error, took time.Duration, line func(string) string) error {
	var ee *exec.ExitError
	var execErr *exec.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return helper.Wrap(helper.KindUnavailable, context.DeadlineExceeded, line(fmt.Sprintf("command %s did not finish in time (ran %s, timeout %s); killed it", b.prog, took.Round(100*time.Millisecond), b.timeout))).
			WithFix("it runs without a terminal and must not prompt; raise timeout in [profiles.%s] if it is just slow", b.profile)
	case errors.Is(err, context.Canceled):
		return helper.Wrap(helper.KindUnavailable, err, fmt.Sprintf("command %s interrupted", b.prog))
	case errors.As(err, &execErr):
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot run command %s: %s", b.prog, remote.Clean(execErr.Err.Error()))).
			WithFix("install it, or correct command in [profiles.%s]", b.profile)
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if code > 0 && b.loginCodes[code] {
			e := helper.LoginNeeded(b.profile, line(fmt.Sprintf("command %s says a login is needed (exit status %d)", b.prog, code)))
			if b.loginHint != "" {
				e.Fix = remote.Clean(b.loginHint)
			} else {
				e.Fix = fmt.Sprintf("log in with the tool %s uses, then try again", b.prog)
			}
			return e
		}
		how := fmt.Sprintf("exit status %d", code)
		if code < 0 {
			how = "killed by a signal"
			if ws, ok := signalOf(ee); ok {
				how = "killed by signal " + ws
			}
		}
		return helper.Wrap(helper.KindUnavailable, err, line(fmt.Sprintf("command %s failed (%s)", b.prog, how))).
			WithFix("run it yourself to see why (it runs with stdin /dev/null); %s in [profiles.%s.options] marks exit statuses that mean \"log in first\"", OptionLoginExitCodes, b.profile)
	}
	return helper.Wrap(helper.KindUnavailable, err, fmt.Sprintf("command %s: %s", b.prog, remote.Clean(err.Error())))
}

// environ is the command's environment: the process's, without
// go-plugin's variables, plus the request.
func (b *Backend) environ(req helper.Request) []string {
	var env []string
	if b.env.Environ != nil {
		for _, kv := range b.env.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "PLUGIN_") || k == "TOKENHELPER_PLUGIN" || strings.HasPrefix(k, "TOKENHELPER_OPTION_") {
				continue
			}
			env = append(env, kv)
		}
	}
	minValid := int64(math.Ceil(req.MinValid.Seconds()))
	force := "0"
	if req.Force {
		force = "1"
	}
	env = append(env,
		"TOKENHELPER_PROFILE="+req.Profile,
		"TOKENHELPER_SCOPES="+strings.Join(req.Scopes, " "),
		"TOKENHELPER_AUDIENCES="+strings.Join(req.Audiences, " "),
		"TOKENHELPER_MIN_VALID="+strconv.FormatInt(minValid, 10),
		"TOKENHELPER_FORCE="+force,
	)
	for k, v := range b.options {
		env = append(env, "TOKENHELPER_OPTION_"+optionVar(k)+"="+v)
	}
	return env
}

func optionVar(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// output is the JSON form a command may print.
type output struct {
	AccessToken *string         `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	ExpiresAt   json.RawMessage `json:"expires_at"`
	Issuer      string          `json:"issuer"`
	Scope       string          `json:"scope"`
}

// parse reads what the command printed. Its errors never contain any of
// it.
func (b *Backend) parse(out []byte) (*helper.Token, error) {
	s := strings.TrimSpace(string(out))
	fix := "make it print only the token, or a JSON object with access_token"
	if s == "" {
		return nil, helper.Errorf(helper.KindUnavailable, "command %s printed nothing", b.prog).WithFix("%s", fix)
	}
	tok := &helper.Token{Source: "command " + strings.Fields(b.command)[0]}
	var expSet bool
	if strings.HasPrefix(s, "{") {
		var o output
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&o); err != nil || dec.More() {
			return nil, helper.Errorf(helper.KindUnavailable, "command %s printed something that starts like JSON but is not one JSON object (%d bytes)", b.prog, len(s)).WithFix("%s", fix)
		}
		if o.AccessToken == nil || *o.AccessToken == "" {
			return nil, helper.Errorf(helper.KindUnavailable, "command %s printed a JSON object without access_token", b.prog).WithFix("%s", fix)
		}
		if o.TokenType != "" && !strings.EqualFold(o.TokenType, "bearer") {
			return nil, helper.Errorf(helper.KindUnavailable, "command %s printed a token of type %q, not a bearer token", b.prog, remote.Clean(o.TokenType)).WithFix("%s", fix)
		}
		tok.AccessToken = strings.TrimSpace(*o.AccessToken)
		tok.Issuer = remote.Clean(o.Issuer)
		tok.Scopes = strings.Fields(o.Scope)
		now := b.env.Now()
		switch {
		case len(o.ExpiresAt) > 0 && string(o.ExpiresAt) != "null":
			t, err := parseTime(o.ExpiresAt)
			if err != nil {
				return nil, helper.Errorf(helper.KindUnavailable, "command %s printed an expires_at that is neither Unix seconds nor an RFC 3339 time", b.prog).WithFix("%s", fix)
			}
			tok.Expiry, expSet = t, true
		case len(o.ExpiresIn) > 0 && string(o.ExpiresIn) != "null":
			f, err := number(o.ExpiresIn)
			if err != nil || f < 0 || f > 1e9 || math.IsNaN(f) {
				return nil, helper.Errorf(helper.KindUnavailable, "command %s printed an expires_in that is not a number of seconds", b.prog).WithFix("%s", fix)
			}
			tok.Expiry, expSet = now.Add(time.Duration(f*float64(time.Second))), true
		}
	} else {
		if strings.ContainsFunc(s, unicode.IsSpace) {
			n := len(strings.Fields(s))
			return nil, helper.Errorf(helper.KindUnavailable, "command %s printed %d words; a token is one", b.prog, n).WithFix("%s", fix)
		}
		tok.AccessToken = s
	}
	if !helper.IsB64Token(tok.AccessToken) {
		return nil, helper.Errorf(helper.KindUnavailable, "command %s printed something that is not a bearer token (%d bytes, not an RFC 6750 b64token)", b.prog, len(tok.AccessToken)).WithFix("%s", fix)
	}
	info, err := jwtinfo.Parse(tok.AccessToken)
	if err != nil {
		return nil, helper.Errorf(helper.KindUnavailable, "command %s printed a damaged JWT (%d bytes)", b.prog, len(tok.AccessToken)).WithFix("%s", fix)
	}
	if info.IsJWT {
		if !expSet {
			tok.Expiry = info.Expiry
		}
		if tok.Issuer == "" {
			tok.Issuer = info.Issuer
		}
		if len(tok.Scopes) == 0 {
			tok.Scopes = info.Scopes
		}
		tok.Audiences = info.Audiences
	}
	return tok, nil
}

// number reads a JSON number, or a string holding one.
func number(raw json.RawMessage) (float64, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.Float64()
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(s), 64)
}

// parseTime reads Unix seconds (number or string) or an RFC 3339 time.
func parseTime(raw json.RawMessage) (time.Time, error) {
	if f, err := number(raw); err == nil {
		if f < 0 || f > 1e11 || math.IsNaN(f) {
			return time.Time{}, errors.New("bad number")
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339, s)
}

// Status says which program the profile runs and whether it is there,
// without running it.
func (b *Backend) Status(ctx context.Context) (helper.Status, error) {
	st := helper.Status{Backend: Name}
	how := "runs"
	if b.Shell() {
		how = "runs through /bin/sh"
	}
	prog := strings.Fields(b.command)[0]
	if p, err := exec.LookPath(prog); err == nil {
		st.OK = true
		st.Lines = append(st.Lines, fmt.Sprintf("%s %s (%s), timeout %s", how, b.prog, p, b.timeout))
	} else if b.Shell() {
		st.OK = true
		st.Lines = append(st.Lines, fmt.Sprintf("%s a command starting with %s, timeout %s", how, b.prog, b.timeout))
	} else {
		st.Lines = append(st.Lines, fmt.Sprintf("command %s is not installed (not in PATH)", b.prog))
	}
	return st, nil
}

// limited keeps at most max bytes and remembers that more came.
type limited struct {
	buf  bytes.Buffer // not embedded: io.Copy would use its ReadFrom and bypass the limit
	max  int
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); len(p) > room {
		l.over = true
		if room > 0 {
			l.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return l.buf.Write(p)
}

// Bytes returns what was kept.
func (l *limited) Bytes() []byte { return l.buf.Bytes() }
