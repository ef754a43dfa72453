package remote

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

const jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoic3RvcmFnZS5yZWFkOi8ifQ.c2lnbmF0dXJl"

func TestLastLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"\n\n", ""},
		{"starting\nerror: vault says no\n", "error: vault says no"},
		{"x\n{\"@level\":\"debug\",\"@message\":\"plugin address\"}\n", "x"},
		{"panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:5\n", "panic: runtime error: index out of range"},
		{"fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n", "fatal error: all goroutines are asleep - deadlock!"},
		{"token is " + jwt + " and it failed\n", "token is [redacted] and it failed"},
		{"Bearer " + strings.Repeat("Ab9+/", 10) + "==\n", "Bearer [redacted]"},
		{"cannot open /usr/local/share/tokenhelper/plugins/site-helper-config.toml\n", "cannot open /usr/local/share/tokenhelper/plugins/site-helper-config.toml"},
		{"bell\x07 and \x1b[31mred\x1b[0m\n", "bell and [31mred [0m"},
	} {
		var tl Tail
		fmt.Fprint(&tl, tc.in)
		if got := tl.LastLine(); got != tc.want {
			t.Errorf("LastLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var tl Tail
	fmt.Fprint(&tl, "printed hunter2-secret-value to stderr\n")
	if got := tl.LastLine("hunter2-secret-value", "short"); got != "printed [redacted] to stderr" {
		t.Errorf("secret not redacted: %q", got)
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	var tl Tail
	for i := range 5000 {
		fmt.Fprintf(&tl, "line %d\n", i)
	}
	if len(tl.String()) > TailSize || tl.LastLine() != "line 4999" {
		t.Fatalf("kept %d bytes, last line %q", len(tl.String()), tl.LastLine())
	}
	long := strings.Repeat("word ", 1000)
	if got := SafeLine(long); len(got) > MaxLine {
		t.Fatalf("SafeLine kept %d bytes", len(got))
	}
}

// FuzzSafeLine: whatever surrounds a secret, SafeLine removes it, keeps
// one short line and no control characters.
func FuzzSafeLine(f *testing.F) {
	f.Add("error: token ", "c2VjcmV0LXRva2VuLXZhbHVl", " rejected")
	f.Add("", jwt, "")
	f.Add("a\nb", "hunter2hunter2", "\x00\x1b")
	f.Fuzz(func(t *testing.T, before, secret, after string) {
		got := SafeLine(before+secret+after, secret)
		sec := strings.TrimSpace(secret)
		if len(sec) >= 8 && !strings.Contains("[redacted]", sec) && strings.Contains(got, sec) {
			t.Fatalf("SafeLine(%q) = %q shows the secret", before+secret+after, got)
		}
		if len(got) > MaxLine+len("…") {
			t.Fatalf("SafeLine returned %d bytes", len(got))
		}
		if strings.ContainsFunc(got, unicode.IsControl) {
			t.Fatalf("SafeLine returned control characters: %q", got)
		}
	})
}
