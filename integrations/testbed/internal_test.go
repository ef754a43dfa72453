package testbed

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestScopePolicy(t *testing.T) {
	alice := &User{Name: "alice", Groups: []string{"/wlcg", "/wlcg/xfers"},
		Scopes: []string{"storage.read:/", "storage.modify:/home/alice", "compute.read"}}
	for _, tc := range []struct {
		scope string
		want  bool
	}{
		{"openid", true},
		{"offline_access", true},
		{"storage.read:/", true},
		{"storage.read:/anything/below", true},
		{"storage.modify:/home/alice", true},
		{"storage.modify:/home/alice/sub/dir", true},
		{"storage.modify:/home/alice/", true},
		{"storage.modify:/home/alicex", false},
		{"storage.modify:/home", false},
		{"storage.modify:/home/alice/../bob", false},
		{"storage.create:/home/alice", false},
		{"compute.read", true},
		{"compute.create", false},
		{"wlcg.groups:/wlcg/xfers", true},
		{"wlcg.groups:/cms", false},
		{"storage.read", false},
		{"storage.read:relative", false},
	} {
		if got := userMay(alice, tc.scope); got != tc.want {
			t.Errorf("userMay(alice, %q) = %v, want %v", tc.scope, got, tc.want)
		}
	}
	got := filterScopes([]string{"openid", "storage.read:/data", "storage.modify:/", "openid", "wlcg.groups:/wlcg/xfers", "compute.read"},
		alice, []string{"openid", "storage.read:/", "wlcg.groups"})
	if want := []string{"openid", "storage.read:/data", "wlcg.groups:/wlcg/xfers"}; !slices.Equal(got, want) {
		t.Errorf("filterScopes = %v, want %v", got, want)
	}
	if got := filterScopes([]string{"anything"}, nil, nil); !slices.Equal(got, []string{"anything"}) {
		t.Errorf("client acting alone with no scope list: %v", got)
	}
	for _, tc := range []struct {
		req, granted []string
		want         bool
	}{
		{[]string{"storage.read:/a"}, []string{"storage.read:/"}, true},
		{[]string{"storage.read:/"}, []string{"storage.read:/a"}, false},
		{[]string{"wlcg.groups:/wlcg"}, []string{"wlcg.groups"}, true},
		{[]string{"openid", "offline_access"}, []string{"openid"}, false},
		{nil, []string{"openid"}, true},
	} {
		if got := subsetOf(tc.req, tc.granted); got != tc.want {
			t.Errorf("subsetOf(%v, %v) = %v", tc.req, tc.granted, got)
		}
	}
	groups := groupsFor([]string{"wlcg.groups:/wlcg/xfers", "wlcg.groups", "wlcg.groups:/cms"}, alice.Groups)
	if want := []string{"/wlcg/xfers", "/wlcg"}; !slices.Equal(groups, want) {
		t.Errorf("groupsFor = %v, want %v (requested first)", groups, want)
	}
	if groupsFor([]string{"openid"}, alice.Groups) != nil {
		t.Error("groups without a group scope")
	}
}

func TestReencodeForm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want url.Values
	}{
		{"scope=openid offline_access storage.read:/", url.Values{"scope": {"openid offline_access storage.read:/"}}},
		{"scope=openid+offline_access&x=a%20b", url.Values{"scope": {"openid offline_access"}, "x": {"a b"}}},
		{"password=50% off+more", url.Values{"password": {"50% off+more"}}},
		{"audience=https://a.example https://b.example", url.Values{"audience": {"https://a.example https://b.example"}}},
		{"a=x;y", url.Values{"a": {"x;y"}}},
		{"k", url.Values{"k": {""}}},
		{"v=été", url.Values{"v": {"été"}}},
	} {
		out, _ := reencodeForm([]byte(tc.in))
		got, err := url.ParseQuery(string(out))
		if err != nil {
			t.Errorf("%q → %q: %v", tc.in, out, err)
			continue
		}
		if !equalValues(got, tc.want) {
			t.Errorf("%q → %v, want %v", tc.in, got, tc.want)
		}
	}
	enc := url.Values{"scope": {"a b"}, "s": {"x+y%&="}}.Encode()
	if out, changed := reencodeForm([]byte(enc)); changed || string(out) != enc {
		t.Errorf("an encoded body was changed: %q → %q", enc, out)
	}
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// FuzzReencodeForm: any body comes out parseable, encoded bodies come out
// unchanged, and nothing panics.
func FuzzReencodeForm(f *testing.F) {
	f.Add([]byte("grant_type=refresh_token&refresh_token=abc&scope=openid offline_access"))
	f.Add([]byte("a=%zz&b=%4"))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, changed := reencodeForm(body)
		if _, err := url.ParseQuery(string(out)); err != nil {
			t.Fatalf("%q → %q does not parse: %v", body, out, err)
		}
		if !changed && string(out) != string(body) {
			t.Fatalf("unchanged flag but %q → %q", body, out)
		}
		if again, changed2 := reencodeForm(out); changed2 || string(again) != string(out) {
			t.Fatalf("not idempotent: %q → %q → %q", body, out, again)
		}
	})
}

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	c.Advance(time.Hour)
	if !c.Now().Equal(start.Add(time.Hour)) {
		t.Errorf("frozen clock: %v", c.Now())
	}
	r := RealClock()
	r.Advance(24 * time.Hour)
	if d := time.Until(r.Now()); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("ticking clock offset %v", d)
	}
	r.Set(start)
	if d := r.Now().Sub(start); d < 0 || d > time.Minute {
		t.Errorf("ticking clock after Set: %v", d)
	}
}

func TestNormalizeUserCode(t *testing.T) {
	for _, in := range []string{"BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " BCDF GHJK "} {
		if got := normalizeUserCode(in); got != "BCDFGHJK" {
			t.Errorf("normalizeUserCode(%q) = %q", in, got)
		}
	}
}

// FuzzRegistration: any registration body is answered with 201 or a 400
// OAuth error, never a panic or a 500.
func FuzzRegistration(f *testing.F) {
	f.Add([]byte(`{"client_name":"x","grant_types":["refresh_token","urn:ietf:params:oauth:grant-type:device_code"],"scope":"openid","token_endpoint_auth_method":"none"}`))
	f.Add([]byte(`{"grant_types":"refresh_token"}`))
	f.Add([]byte(`[]`))
	tb, err := New(Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer tb.Close()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, pathRegistration, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		tb.handleRegistration(rec, req)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusBadRequest {
			t.Fatalf("%q: status %d", body, rec.Code)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q: answer is not JSON: %q", body, rec.Body.String())
		}
	})
}
