package storage

import (
	"net/http"
	"slices"
	"testing"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		claim, base string
		want        []grant
	}{
		{"storage.read:/data", "/", []grant{{permRead, "/data"}}},
		{"storage.read:/data", "/vo", []grant{{permRead, "/vo/data"}}},
		{"storage.read:/", "/vo", []grant{{permRead, "/vo"}}},
		{"storage.modify:/a", "/", []grant{{permModify | permCreate, "/a"}}},
		{"storage.stage:/a", "/", []grant{{permStage | permRead, "/a"}}},
		{"storage.create:/a/../b/./c/", "/vo", []grant{{permCreate, "/vo/b/c"}}},
		{"storage.read:/../../etc", "/vo", []grant{{permRead, "/vo/etc"}}},
		{"openid offline_access compute.create wlcg.groups:/cms storage.read:/x", "/", []grant{{permRead, "/x"}}},
		{"storage.read storage.read: storage.read:rel storage.write:/x STORAGE.READ:/x", "/", nil},
		{"  storage.read:/a\tstorage.create:/b  ", "/", []grant{{permRead, "/a"}, {permCreate, "/b"}}},
	}
	for _, tc := range tests {
		if got := parseScopes(tc.claim, tc.base); !slices.Equal(got, tc.want) {
			t.Errorf("parseScopes(%q, %q) = %v, want %v", tc.claim, tc.base, got, tc.want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		scope, p string
		want     bool
	}{
		{"/data", "/data", true},
		{"/data", "/data/x", true},
		{"/data", "/data/x/y", true},
		{"/data", "/database", false},
		{"/data", "/dat", false},
		{"/data", "/", false},
		{"/", "/anything", true},
		{"/data/f.txt", "/data/f.txt2", false},
	}
	for _, tc := range tests {
		if got := covers(tc.scope, tc.p); got != tc.want {
			t.Errorf("covers(%q, %q) = %v", tc.scope, tc.p, got)
		}
	}
	for in, want := range map[string]string{
		"": "/", "a": "/a", "/a/../../b": "/b", "//a//b/": "/a/b", "/a/./b/..": "/a",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExtractToken(t *testing.T) {
	tests := []struct {
		auth, query string
		want        string
		status      int // 0: success
	}{
		{"Bearer abc.def", "", "abc.def", 0},
		{"bearer abc", "", "abc", 0},
		{"BEARER   abc  ", "", "abc", 0},
		{"Bearer abc==", "", "abc==", 0},
		{"", "authz=Bearer%20abc", "abc", 0},
		{"", "authz=Bearer+abc", "abc", 0},
		{"", "x=1&authz=Bearer%20abc&y=2", "abc", 0},
		{"", "authz=abc", "abc", 0},
		{"Bearer abc", "authz=Bearer%20abc", "abc", 0},
		{"Basic dXNlcjpwdw==", "", "", 401},
		{"Bearerabc", "", "", 401},
		{"", "", "", 401},
		{"", "authorization=Bearer%20abc", "", 401},
		{"", "aut%68z=Bearer%20abc", "abc", 0},
		{"Bearer ", "", "", 401},
		{"Bearer a b", "", "", 401},
		{"Bearer a=b", "", "", 401},
		{"", "authz=%zz", "", 401},
		{"Bearer abc", "authz=Bearer%20xyz", "", 400},
		{"", "authz=abc&authz=abc", "", 400},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.auth != "" {
			h.Set("Authorization", tc.auth)
		}
		got, err := extractToken(h, tc.query)
		status := 0
		if err != nil {
			status = err.status
		}
		if got != tc.want || status != tc.status {
			t.Errorf("extractToken(%q, %q) = %q, %d; want %q, %d", tc.auth, tc.query, got, status, tc.want, tc.status)
		}
	}
	h := http.Header{}
	h.Add("Authorization", "Bearer a")
	h.Add("Authorization", "Bearer a")
	if _, err := extractToken(h, ""); err == nil || err.status != 400 {
		t.Errorf("two Authorization headers: %v", err)
	}
	if got := stripAuthzQuery("a=1&authz=Bearer%20x&b=2&aut%68z=y&authzz=k"); got != "a=1&b=2&authzz=k" {
		t.Errorf("stripAuthzQuery = %q", got)
	}
}
