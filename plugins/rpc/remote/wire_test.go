package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func TestErrorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in          error
		kind        helper.Kind
		msg, fix    string
		unsupported bool
	}{
		{helper.LoginNeeded("p", "session expired"), helper.KindLoginNeeded, "session expired", "run: tokenhelper login -p p", false},
		{helper.Errorf(helper.KindUnsafe, "x").WithFix("y"), helper.KindUnsafe, "x", "y", false},
		{helper.Wrap(helper.KindDenied, errors.New("cause"), ""), helper.KindDenied, "cause", "", false},
		{fmt.Errorf("wrapped: %w", errors.ErrUnsupported), helper.KindUsage, "wrapped: unsupported operation", "", true},
		{&helper.Error{Kind: helper.KindUsage, Msg: "no status", Err: errors.ErrUnsupported}, helper.KindUsage, "no status", "", true},
		{errors.New("plain"), helper.KindInternal, "plain", "", false},
		{&helper.Error{Kind: 77, Msg: "odd"}, helper.KindUnavailable, "odd", "", false},
		{&helper.Error{Kind: helper.KindConfig}, helper.KindConfig, "the backend failed without saying why", "", false},
	} {
		w := ErrorOf(tc.in)
		data, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var back Error
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		out := back.Err()
		var he *helper.Error
		if !errors.As(out, &he) {
			t.Fatalf("%v: %T", tc.in, out)
		}
		if he.Kind != tc.kind || he.Msg != tc.msg || he.Fix != tc.fix || errors.Is(out, errors.ErrUnsupported) != tc.unsupported {
			t.Errorf("%v crossed as %+v (unsupported %v)", tc.in, he, errors.Is(out, errors.ErrUnsupported))
		}
	}
	if ErrorOf(nil) != nil || (*Error)(nil).Err() != nil {
		t.Error("nil")
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"one\ntwo\r\nthree":        "one two three",
		"bell\x07 and \x1b[1m esc": "bell and [1m esc",
		"bad \xff utf8":            "bad ? utf8",
		"  spaced   out  ":         "spaced out",
		"line\u2028sep":            "line sep",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
	long := Clean(strings.Repeat("é", MaxText))
	if len(long) > MaxText+len("…") || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("long text: %d bytes, valid %v", len(long), utf8.ValidString(long))
	}
}

func TestDecodeCall(t *testing.T) {
	good := Call{Wire: WireVersion, Op: OpToken, Target: Target{Name: "file", Builtin: true}, Profile: &config.Profile{Name: "p"}, Request: &helper.Request{}}
	enc := func(c Call) []byte { b, _ := json.Marshal(c); return b }
	if _, err := DecodeCall(enc(good)); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(c *Call){
		"wire version":   func(c *Call) { c.Wire = 99 },
		"unknown op":     func(c *Call) { c.Op = "explode" },
		"no request":     func(c *Call) { c.Request = nil },
		"no profile":     func(c *Call) { c.Profile = nil },
		"no target":      func(c *Call) { c.Target = Target{} },
		"no path":        func(c *Call) { c.Target = Target{Name: "x"} },
		"logout no args": func(c *Call) { c.Op = OpLogout },
	}
	for name, mutate := range bad {
		c := good
		mutate(&c)
		if _, err := DecodeCall(enc(c)); !helper.IsKind(err, helper.KindInternal) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeCall([]byte("{not json")); err == nil {
		t.Error("bad JSON accepted")
	}
	info := Call{Wire: WireVersion, Op: OpInfo, Target: Target{Name: "x", Path: "/p"}}
	if _, err := DecodeCall(enc(info)); err != nil {
		t.Errorf("info without profile: %v", err)
	}
}

// The main binary must not link gRPC, protobuf or go-plugin: their
// package initialization would slow every tokenhelper start.
func TestMainBinaryLinksNoGRPC(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "github.com/tokenhelper/tokenhelper/cmd/tokenhelper").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/hashicorp/go-plugin", "github.com/hashicorp/yamux", "net/rpc"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("cmd/tokenhelper links %s: keep it in tokenhelper-pluginhost (plugins/rpc/remote explains why)", dep)
			}
		}
	}
}
