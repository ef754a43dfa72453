package remote

import (
	"regexp"
	"strings"
	"sync"
)

// TailSize is how many bytes of a child's stderr a Tail keeps.
const TailSize = 8 << 10

// Tail is an io.Writer that keeps the last TailSize bytes written to it:
// a child's stderr, from which LastLine picks the line worth showing in an
// error message. Safe for concurrent use.
type Tail struct {
	mu  sync.Mutex
	buf []byte
}

// Write keeps the end of p.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > TailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-TailSize:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// LastLine returns the line of the kept output that best says what went
// wrong, made safe to show: a Go "panic:" or "fatal error:" line if there
// is one, else the last non-empty line that is not a structured log record
// (go-plugin's JSON lines). Words that look like tokens (JWTs, long
// base64 runs) and any of secrets are replaced by "[redacted]". "" when
// there is nothing.
func (t *Tail) LastLine(secrets ...string) string {
	lines := strings.Split(t.String(), "\n")
	pick := ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			pick = l
			break
		}
	}
	if pick == "" {
		for i := len(lines) - 1; i >= 0; i-- {
			l := strings.TrimSpace(lines[i])
			if l == "" || strings.HasPrefix(l, `{"@`) {
				continue
			}
			pick = l
			break
		}
	}
	return SafeLine(pick, secrets...)
}

// The patterns are compiled on first use: this package is linked into
// the main binary, whose start must stay cheap.
var (
	jwtLike  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*`) })
	longWord = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[A-Za-z0-9\-._~+/]{40,}=*`) })
)

// MaxLine bounds a line from a child's output in a message.
const MaxLine = 300

// SafeLine makes one line of a child's output safe to put into an error
// message: token-like words and the given secrets (8 bytes or longer)
// redacted, control characters removed, at most MaxLine bytes.
func SafeLine(s string, secrets ...string) string {
	// Redact in the raw text and again once it is flattened the way Clean
	// flattens it: turning a control character into a space, or runs of
	// white space into one, can make a secret appear that was not there
	// (found by FuzzSafeLine: "00\x0400000" + "00 00000").
	for _, sec := range secrets {
		if sec = strings.TrimSpace(sec); len(sec) >= 8 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = flatten(s)
	for _, sec := range secrets {
		if sec = flatten(sec); len(sec) >= 8 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = jwtLike().ReplaceAllString(s, "[redacted]")
	s = longWord().ReplaceAllStringFunc(s, func(w string) string {
		if strings.HasPrefix(w, "/") && !strings.ContainsAny(w, "+=") {
			return w // a path, not a token
		}
		return "[redacted]"
	})
	s = Clean(s)
	if len(s) > MaxLine {
		s = Clean(s[:MaxLine])
	}
	return s
}
