package helper

import (
	"slices"
	"strings"
	"time"
)

// Request describes the token a caller wants.
type Request struct {
	// Profile is the resolved profile name ("" when none is configured).
	Profile string
	// Scopes requested for this token; empty means the profile's defaults.
	Scopes []string
	// Audiences requested for this token; empty means the profile's defaults.
	Audiences []string
	// MinValid is how long the token must still be valid when handed out.
	MinValid time.Duration
	// Force asks for a new token even if a cached one is still valid.
	Force bool
	// Interactive is true when the caller may talk to a person (a terminal
	// on stdin and stderr). Backends never prompt when it is false.
	Interactive bool
}

// Normalized returns a copy with scopes and audiences sorted and
// de-duplicated, so equal requests compare (and cache) equal.
func (r Request) Normalized() Request {
	r.Scopes = normalizeList(r.Scopes)
	r.Audiences = normalizeList(r.Audiences)
	return r
}

func normalizeList(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Token is an access token with what is known about it. It never carries
// refresh tokens or client secrets: those stay inside the backend.
type Token struct {
	AccessToken string    `json:"access_token"`
	Expiry      time.Time `json:"expiry,omitzero"` // zero when unknown
	Issuer      string    `json:"issuer,omitempty"`
	Scopes      []string  `json:"scopes,omitempty"`
	Audiences   []string  `json:"audiences,omitempty"`
	Profile     string    `json:"profile,omitempty"`
	// Source says where the token came from: "cache", "oidc-agent",
	// "BEARER_TOKEN", a file path, ...
	Source string `json:"source,omitempty"`
}

// ValidFor reports how long the token is still valid at now. A token with
// unknown expiry is reported as valid for a very long time.
func (t *Token) ValidFor(now time.Time) time.Duration {
	if t.Expiry.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return t.Expiry.Sub(now)
}

// ValidBeyond reports whether the token is still valid minValid after now.
func (t *Token) ValidBeyond(now time.Time, minValid time.Duration) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return t.ValidFor(now) > minValid
}

// String never prints the token itself, so a Token accidentally passed to
// a log or fmt call leaks nothing.
func (t Token) String() string {
	return "Token(" + Fingerprint(t.AccessToken) + ")"
}

// GoString keeps %#v from printing the token.
func (t Token) GoString() string { return t.String() }

// Fingerprint returns a short, non-reversible label for a secret that is
// safe to log (a truncated SHA-256), so two log lines can be compared
// without showing any part of the secret.
func Fingerprint(secret string) string {
	if secret == "" {
		return "<none>"
	}
	return "sha256:" + shortHash(secret)
}
