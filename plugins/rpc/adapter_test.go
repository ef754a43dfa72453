package rpc_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/pluginpb"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// fill sets every field of the struct v points to to a non-zero value.
func fill(t *testing.T, v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("value-of-" + name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int64:
			f.SetInt(int64(time.Duration(i+1) * time.Minute))
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{name + "-1", name + "-2"}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"k": name}))
		default:
			t.Fatalf("fill: field %s has kind %s: extend the test", name, f.Kind())
		}
	}
}

// Every profile field reaches the plugin: adding a field to
// config.Profile without carrying it in the protocol fails here.
func TestProfileRoundTrip(t *testing.T) {
	var p config.Profile
	fill(t, reflect.ValueOf(&p).Elem())
	got := rpc.ProfileFromPB(rpc.ProfileToPB(&p))
	if !reflect.DeepEqual(got, &p) {
		t.Fatalf("round trip lost fields:\n got %+v\nwant %+v", got, &p)
	}
	if rpc.ProfileToPB(nil) != nil || rpc.ProfileFromPB(nil) != nil {
		t.Fatal("nil profile")
	}
}

func TestHostAndRequestRoundTrip(t *testing.T) {
	var d config.Dirs
	fill(t, reflect.ValueOf(&d).Elem())
	d.ConfigExplicit = false // not carried: the plugin never loads the config
	h := remote.Host{Dirs: d, UID: 1234, TmpDir: "/tmp", Verbose: 2, Version: "v1"}
	if got := rpc.HostFromPB(rpc.HostToPB(h)); !reflect.DeepEqual(got, h) {
		t.Fatalf("host: got %+v want %+v", got, h)
	}
	r := helper.Request{Profile: "p", Scopes: []string{"a", "b"}, Audiences: []string{"x"}, MinValid: 90 * time.Second, Force: true, Interactive: true}
	if got := rpc.RequestFromPB(rpc.RequestToPB(r)); !reflect.DeepEqual(got, r) {
		t.Fatalf("request: got %+v want %+v", got, r)
	}
}

// The protocol's error codes are tokenhelper's exit codes, one to one.
func TestErrorKinds(t *testing.T) {
	for k := helper.KindInternal; k <= helper.KindNoProfile; k++ {
		pk := rpc.KindToPB(k)
		want := "ERROR_KIND_" + strings.ToUpper(strings.ReplaceAll(k.String(), "-", "_"))
		if pk.String() != want || int(pk) != k.ExitCode() {
			t.Errorf("%s: protocol code %s (%d), want %s (%d)", k, pk, int(pk), want, k.ExitCode())
		}
		if back := rpc.KindFromPB(pk); back != k {
			t.Errorf("%s: came back as %s", k, back)
		}
	}
	if len(pluginpb.ErrorKind_name) != int(helper.KindNoProfile)+1 {
		t.Errorf("the protocol has %d kinds, helper %d", len(pluginpb.ErrorKind_name)-1, helper.KindNoProfile)
	}
	for _, k := range []pluginpb.ErrorKind{pluginpb.ErrorKind_ERROR_KIND_UNSPECIFIED, 99, -1} {
		if got := rpc.KindFromPB(k); got != helper.KindUnavailable {
			t.Errorf("unknown code %d: %s, want unavailable", k, got)
		}
	}
	if rpc.KindToPB(0) != pluginpb.ErrorKind_ERROR_KIND_INTERNAL {
		t.Error("kind 0 must cross as internal")
	}
}

// scripted is a backend whose answers the test sets.
type scripted struct {
	mu       sync.Mutex
	tok      *helper.Token
	err      error
	req      helper.Request
	deadline time.Time
	status   helper.Status
}

func (s *scripted) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.req = req
	s.deadline, _ = ctx.Deadline()
	return s.tok, s.err
}

func (s *scripted) Login(ctx context.Context, req helper.LoginRequest) (*helper.Token, error) {
	if _, err := req.UI.Secret("Passphrase: "); err != nil {
		return nil, err
	}
	return s.tok, nil
}

func (s *scripted) Logout(ctx context.Context, req helper.LogoutRequest) error { return s.err }

func (s *scripted) Status(ctx context.Context) (helper.Status, error) { return s.status, s.err }

type minimal struct{}

func (minimal) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	return &helper.Token{AccessToken: "t0ken"}, nil
}

// connect serves b over gRPC in-process and returns the host's client.
func connect(t *testing.T, b helper.Backend) *rpc.Client {
	t.Helper()
	srv := &rpc.Server{Name: "test", Version: "0.1", Prototype: b, New: func(ctx context.Context, c rpc.Config) (helper.Backend, error) {
		if c.Profile.Name != "prof" {
			t.Errorf("configured with profile %q", c.Profile.Name)
		}
		return b, nil
	}}
	client, _ := plugin.TestPluginGRPCConn(t, false, rpc.PluginSet(srv))
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(rpc.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*rpc.Client)
}

func TestConfigureFirst(t *testing.T) {
	c := connect(t, minimal{})
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil || info.Name != "test" || info.Login || info.Status {
		t.Fatalf("Info before Configure = %+v, %v", info, err)
	}
	if _, err := c.Token(ctx, helper.Request{}); !helper.IsKind(err, helper.KindInternal) || !strings.Contains(err.Error(), "before Configure") {
		t.Fatalf("Token before Configure: %v", err)
	}
	caps, err := c.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "prof"}})
	if err != nil || caps.Login || caps.Logout || caps.Status {
		t.Fatalf("Configure = %+v, %v", caps, err)
	}
	if _, err := c.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "prof"}}); err == nil {
		t.Fatal("second Configure accepted")
	}
	if _, err := c.Configure(ctx, rpc.Config{}); err == nil {
		t.Fatal("Configure without profile accepted")
	}
	for name, call := range map[string]func() error{
		"login":  func() error { _, err := c.Login(ctx, helper.LoginRequest{}); return err },
		"logout": func() error { return c.Logout(ctx, helper.LogoutRequest{}) },
		"status": func() error { _, err := c.Status(ctx); return err },
	} {
		if err := call(); !errors.Is(err, errors.ErrUnsupported) || !helper.IsKind(err, helper.KindUsage) {
			t.Errorf("%s on a backend without it: %v", name, err)
		}
	}
}

func configured(t *testing.T, b helper.Backend) *rpc.Client {
	c := connect(t, b)
	caps, err := c.Configure(context.Background(), rpc.Config{Profile: &config.Profile{Name: "prof"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(*scripted); ok && (!caps.Login || !caps.Logout || !caps.Status) {
		t.Fatalf("capabilities %+v", caps)
	}
	return c
}

// Every kind, message and fix survives the trip; text is made one line.
func TestTypedErrorsCross(t *testing.T) {
	s := &scripted{}
	c := configured(t, s)
	for k := helper.KindInternal; k <= helper.KindNoProfile; k++ {
		s.err = &helper.Error{Kind: k, Msg: "went\nwrong\x1b[31m " + k.String(), Fix: "do\tthis"}
		_, err := c.Token(context.Background(), helper.Request{})
		var he *helper.Error
		if !errors.As(err, &he) {
			t.Fatalf("%s: %T %v", k, err, err)
		}
		if he.Kind != k || he.Msg != "went wrong [31m "+k.String() || he.Fix != "do this" {
			t.Errorf("%s crossed as %+v", k, he)
		}
	}
	s.err = errors.New("plain failure")
	if _, err := c.Token(context.Background(), helper.Request{}); !helper.IsKind(err, helper.KindInternal) || !strings.Contains(err.Error(), "plain failure") {
		t.Errorf("untyped error: %v", err)
	}
	s.err = context.DeadlineExceeded
	if _, err := c.Token(context.Background(), helper.Request{}); helper.KindOf(err) != helper.KindInternal {
		t.Errorf("deadline error from the backend: %v", err)
	}
	s.err = helper.LoginNeeded("prof", "session expired")
	_, err := c.Token(context.Background(), helper.Request{})
	if helper.ExitCode(err) != 4 || err.Error() != "session expired: run: tokenhelper login -p prof" {
		t.Errorf("login needed crossed as %q (exit %d)", err, helper.ExitCode(err))
	}
}

func TestTokenAndRequestCross(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	s := &scripted{tok: &helper.Token{AccessToken: "abc.def-ghi", Expiry: exp, Issuer: "https://iam\n.example", Scopes: []string{"x"}, Audiences: []string{"y"}, Profile: "prof", Source: "src"}}
	c := configured(t, s)
	req := helper.Request{Profile: "prof", Scopes: []string{"s1", "s2"}, Audiences: []string{"a"}, MinValid: time.Minute, Force: true, Interactive: true}
	tok, err := c.Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := *s.tok
	want.Issuer = "https://iam .example"
	if !tok.Expiry.Equal(exp) {
		t.Errorf("expiry crossed as %s, want %s", tok.Expiry, exp)
	}
	tok.Expiry, want.Expiry = time.Time{}, time.Time{}
	if !reflect.DeepEqual(*tok, want) || tok.AccessToken != want.AccessToken {
		t.Errorf("token crossed as %+v, want %+v", *tok, want)
	}
	if !reflect.DeepEqual(s.req, req) {
		t.Errorf("request crossed as %+v, want %+v", s.req, req)
	}
	for _, bad := range []*helper.Token{{AccessToken: "not a token"}, {AccessToken: ""}} {
		s.tok = bad
		if _, err := c.Token(context.Background(), req); !helper.IsKind(err, helper.KindUnavailable) || strings.Contains(err.Error(), "not a token") {
			t.Errorf("bad token %q: %v", bad.AccessToken, err)
		}
	}
	s.tok = nil
	if _, err := c.Token(context.Background(), req); !helper.IsKind(err, helper.KindInternal) {
		t.Errorf("neither token nor error: %v", err)
	}
}

// The backend's deadline ends a little before the host's, so that its
// own timeout error arrives first.
func TestDeadlineMargin(t *testing.T) {
	s := &scripted{tok: &helper.Token{AccessToken: "t"}}
	c := configured(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	host, _ := ctx.Deadline()
	if _, err := c.Token(ctx, helper.Request{}); err != nil {
		t.Fatal(err)
	}
	margin := host.Sub(s.deadline)
	if s.deadline.IsZero() || margin < 150*time.Millisecond || margin > rpc.MaxMargin+50*time.Millisecond {
		t.Fatalf("backend deadline %s before the host's, want about %s", margin, rpc.Margin(2*time.Second))
	}
	if rpc.Margin(time.Hour) != rpc.MaxMargin || rpc.Margin(time.Second) != 100*time.Millisecond {
		t.Fatal("Margin")
	}
	if _, err := c.Token(context.Background(), helper.Request{}); err != nil || !s.deadline.IsZero() {
		t.Fatalf("no host deadline gave the backend deadline %s (%v)", s.deadline, err)
	}
}

// A login in a plugin cannot prompt: the error says what to set instead.
func TestLoginCannotPrompt(t *testing.T) {
	c := configured(t, &scripted{tok: &helper.Token{AccessToken: "t"}})
	_, err := c.Login(context.Background(), helper.LoginRequest{Flow: "device"})
	var he *helper.Error
	if !errors.As(err, &he) || he.Kind != helper.KindLoginNeeded || !strings.Contains(he.Fix, "passphrase_env") || !strings.Contains(he.Fix, "[profiles.prof]") {
		t.Fatalf("login prompting in a plugin: %#v", err)
	}
}

func TestStatusAndLogoutCross(t *testing.T) {
	exp := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	s := &scripted{status: helper.Status{Backend: "test", OK: true, Lines: []string{"agent reachable", "two\nlines"}, SessionExpiry: exp}}
	c := configured(t, s)
	st, err := c.Status(context.Background())
	if err != nil || st.Backend != "test" || !st.OK || !reflect.DeepEqual(st.Lines, []string{"agent reachable", "two lines"}) || !st.SessionExpiry.Equal(exp) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if err := c.Logout(context.Background(), helper.LogoutRequest{Profile: "prof", Forget: true}); err != nil {
		t.Fatal(err)
	}
	s.err = helper.Errorf(helper.KindUnavailable, "agent gone").WithFix("start it")
	if _, err := c.Status(context.Background()); !helper.IsKind(err, helper.KindUnavailable) {
		t.Fatalf("Status error: %v", err)
	}
	if err := c.Logout(context.Background(), helper.LogoutRequest{}); !helper.IsKind(err, helper.KindUnavailable) {
		t.Fatalf("Logout error: %v", err)
	}
}
