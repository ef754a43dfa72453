package gitcred

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// Limits on what Parse reads. git's own records are a few hundred bytes;
// a wwwauth[] header or a token may be a few KiB.
const (
	// MaxLine is the longest line (without its newline) Parse accepts.
	MaxLine = 64 << 10
	// MaxRecord is the most Parse reads for one record.
	MaxRecord = 1 << 20
)

// CapAuthtype is the capability of git ≥ 2.46 that lets a helper answer
// with an authentication scheme and credential (here: Bearer and a token).
const CapAuthtype = "authtype"

// Credential is one record of the credential protocol: what git knows
// about the URL it needs a credential for, and what a helper answered.
// Only the attributes tokenhelper uses are kept; others are ignored, as
// git itself ignores attributes it does not know.
type Credential struct {
	// Protocol is the URL scheme ("https").
	Protocol string
	// Host is the host name, with ":port" when the URL has one.
	Host string
	// Path is the repository path without leading slash ("group/repo.git");
	// git sends it for http(s) only when credential.useHttpPath is true.
	Path string
	// HasPath reports whether the record had a path (or a url with one).
	HasPath bool
	// Username and Password: for get, a user name git already knows (from
	// the URL or credential.username); for store and erase, the
	// credential git used.
	Username string
	Password string
	// PasswordExpiry is password_expiry_utc (git ≥ 2.40); zero when absent
	// or unparsable.
	PasswordExpiry time.Time
	// AuthType and Credential (git ≥ 2.46, with the authtype capability):
	// the scheme and value git put in the Authorization header.
	AuthType   string
	Credential string
	// Ephemeral is the ephemeral attribute (git ≥ 2.46).
	Ephemeral bool
	// Capabilities lists capability[] values ("authtype", "state").
	Capabilities []string
	// WWWAuth lists the WWW-Authenticate header values of the server's
	// response (wwwauth[], git ≥ 2.41).
	WWWAuth []string
}

// HasCapability reports whether the record announced capability name.
func (c *Credential) HasCapability(name string) bool {
	for _, v := range c.Capabilities {
		if v == name {
			return true
		}
	}
	return false
}

// Secret is the credential git used: the Bearer credential when the
// record has an authtype, else the password.
func (c *Credential) Secret() string {
	if c.AuthType != "" {
		return c.Credential
	}
	return c.Password
}

// Target is the URL the record is about, for routing. It fails with
// KindUsage when the record has no protocol, or is for http(s) without a
// host (git always sends both). ok is false when there is nothing to route
// (protocol=cert, which has no host) or the host or port is not one git
// could have connected to: the caller declines.
func (c *Credential) Target() (t config.RouteTarget, ok bool, err error) {
	if c.Host == "" && c.Protocol != "" && !isHTTP(c.Protocol) {
		// protocol=cert (a client certificate's passphrase) has no host.
		return t, false, nil
	}
	if c.Protocol == "" || c.Host == "" {
		return t, false, inputError("the record has no protocol or host (git sends both, e.g. protocol=https and host=gitlab.example.org)")
	}
	host, port, ok := splitHost(c.Host)
	if !ok {
		return t, false, nil
	}
	t = config.RouteTarget{Scheme: c.Protocol, Host: host, Port: port}
	if c.HasPath {
		t.Path = "/" + c.Path
		t.PathKnown = true
	}
	return t, true, nil
}

// splitHost splits git's host field, "host" or "host:port" (port 0 when
// absent). ok is false for an empty host, an empty or invalid port, or a
// port out of range: not a server git could have connected to.
func splitHost(s string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		// No port (or not host:port at all): all of it is the host,
		// unless it ends in a colon with nothing after it.
		return s, 0, !strings.HasSuffix(s, ":")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || h == "" {
		return "", 0, false
	}
	return h, n, true
}

func isHTTP(p string) bool {
	return strings.EqualFold(p, "https") || strings.EqualFold(p, "http")
}

// inputError is the error for input that is not a credential record. The
// message never contains the input itself (it may hold a password).
func inputError(format string, args ...any) *helper.Error {
	return &helper.Error{
		Kind: helper.KindUsage,
		Msg:  "git credential input: " + fmt.Sprintf(format, args...),
		Fix:  "tokenhelper git-credential reads key=value lines as git sends them (see git-credential(1))",
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Parse reads one credential record from r: key=value lines up to a blank
// line or end of file. A trailing "\r" is dropped from each line, as git
// does. Unknown keys are ignored; for list keys (ending in "[]") each line
// adds a value and an empty value clears the list; a later line for any
// other key replaces an earlier one; `url=` is expanded into protocol,
// host, path, username and password, replacing them (git-credential(1)).
//
// Parse fails with KindUsage on a NUL byte, a line without "=", an empty
// key, a line longer than MaxLine, a record longer than MaxRecord, or a
// url that cannot be parsed; it reads no further than the blank line and
// at most MaxRecord+1 bytes (plus read-ahead up to 4 KiB).
func Parse(r io.Reader) (*Credential, error) {
	cr := &countingReader{r: io.LimitReader(r, MaxRecord+1)}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 0, 4096), MaxLine+2)
	c := &Credential{}
	ended := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			ended = true
			break
		}
		if len(line) > MaxLine {
			return nil, inputError("line %d is longer than %d KiB", n, MaxLine>>10)
		}
		if bytes.IndexByte(line, 0) >= 0 {
			return nil, inputError("line %d contains a NUL byte", n)
		}
		k, v, found := bytes.Cut(line, []byte("="))
		if !found {
			return nil, inputError("line %d is not key=value", n)
		}
		if len(k) == 0 {
			return nil, inputError("line %d has an empty key", n)
		}
		if err := c.set(string(k), string(v)); err != nil {
			return nil, inputError("line %d: %s", n, err.Error())
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, inputError("a line is longer than %d KiB", MaxLine>>10)
		}
		return nil, helper.Wrap(helper.KindInternal, err, "cannot read the git credential input")
	}
	if !ended && cr.n > MaxRecord {
		return nil, inputError("the record is larger than %d MiB", MaxRecord>>20)
	}
	return c, nil
}

// set applies one attribute.
func (c *Credential) set(key, value string) error {
	if name, ok := strings.CutSuffix(key, "[]"); ok {
		var list *[]string
		switch name {
		case "capability":
			list = &c.Capabilities
		case "wwwauth":
			list = &c.WWWAuth
		default:
			return nil
		}
		if value == "" {
			*list = nil
		} else {
			*list = append(*list, value)
		}
		return nil
	}
	switch key {
	case "protocol":
		c.Protocol = value
	case "host":
		c.Host = value
	case "path":
		c.Path, c.HasPath = value, true
	case "username":
		c.Username = value
	case "password":
		c.Password = value
	case "password_expiry_utc":
		c.PasswordExpiry = time.Time{}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil && n > 0 && n < 1<<40 {
			c.PasswordExpiry = time.Unix(n, 0).UTC()
		}
	case "authtype":
		c.AuthType = value
	case "credential":
		c.Credential = value
	case "ephemeral":
		c.Ephemeral = parseBool(value)
	case "url":
		return c.setURL(value)
	}
	return nil
}

// parseBool reads a boolean the way git's config does.
func parseBool(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// setURL expands url=VALUE as git's credential_from_url does: the
// credential is cleared, then protocol, user name, password, host and path
// are taken from the URL (percent-decoded; the path without leading and
// trailing slashes).
func (c *Credential) setURL(raw string) error {
	c.Protocol, c.Host, c.Path, c.HasPath, c.Username, c.Password = "", "", "", false, "", ""
	i := strings.Index(raw, "://")
	if i <= 0 {
		return errors.New("url has no scheme")
	}
	proto, rest := raw[:i], raw[i+3:]
	slash := strings.IndexAny(rest, "/?#")
	if slash < 0 {
		slash = len(rest)
	}
	at := strings.IndexByte(rest, '@')
	colon := strings.IndexByte(rest, ':')
	var user, pass, host string
	switch {
	case at < 0 || slash <= at:
		host = rest[:slash]
	case colon < 0 || at <= colon:
		user, host = rest[:at], rest[at+1:slash]
	default:
		user, pass, host = rest[:colon], rest[colon+1:at], rest[at+1:slash]
	}
	path := strings.TrimLeft(rest[slash:], "/")
	parts := []*string{&user, &pass, &host, &path}
	for _, p := range parts {
		*p = percentDecode(*p)
		if strings.ContainsAny(*p, "\n\x00") {
			return errors.New("url contains an encoded newline or NUL")
		}
	}
	for len(path) > 1 && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}
	c.Protocol, c.Host, c.Username, c.Password = proto, host, user, pass
	if path != "" {
		c.Path, c.HasPath = path, true
	}
	return nil
}

// percentDecode decodes %XX sequences (not "+"); malformed sequences stay
// as they are, like git's url_decode.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// Attr is one key=value line of an answer.
type Attr struct{ Key, Value string }

// WriteRecord writes attrs as key=value lines in one Write. It refuses
// (KindInternal, naming only the key) a key or value that would break the
// record: a newline, a carriage return or a NUL, or "=" in a key.
func WriteRecord(w io.Writer, attrs []Attr) error {
	var b bytes.Buffer
	for _, a := range attrs {
		if a.Key == "" || strings.ContainsAny(a.Key, "=\n\r\x00") || strings.ContainsAny(a.Value, "\n\r\x00") {
			return helper.Errorf(helper.KindInternal, "cannot send attribute %q to git: it contains a line break or NUL", strings.Map(printable, a.Key))
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(a.Value)
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

func printable(r rune) rune {
	if r < ' ' || r == 0x7f {
		return '?'
	}
	return r
}
