package jwtinfo

import (
	"encoding/json"
	"time"
)

// Report is the machine-readable form of an inspection (`tokenhelper
// inspect --json`). Its JSON field names are stable:
//
//	format              "jwt", "jwe" or "opaque"
//	length              token length in bytes
//	fingerprint         "sha256:…" label of the token (safe to show and compare)
//	checked_at          RFC 3339 UTC time the validity fields refer to
//	header              the JOSE header, every field (jwt, jwe)
//	claims              every claim, as in the token (jwt)
//	issuer              iss
//	subject             sub
//	username            preferred_username
//	client_id           azp, else client_id
//	audiences           aud as an array
//	scopes              scope split on spaces (else scp)
//	groups              wlcg.groups (else groups)
//	wlcg_version        wlcg.ver
//	token_id            jti
//	key_id, alg, typ    from the header
//	issued_at, not_before, expires_at   RFC 3339 UTC (absent when unknown)
//	expires_in_seconds  whole seconds from checked_at to exp, negative when
//	                    expired; null when unknown (opaque, jwe, no exp)
//	expired             true/false; null when unknown
//	valid               true when not expired and not before nbf at
//	                    checked_at (time only: the signature is NOT checked);
//	                    false when exp or nbf is present but unusable; a
//	                    token without exp is valid by time; null for
//	                    opaque and jwe tokens
//	warnings            array of {"code", "message"}, never null
//	verification        the Verdict, when the caller verified the token
//
// Empty strings and lists are left out. The raw token and its signature
// are never part of a Report.
type Report struct {
	Format      Format         `json:"format"`
	Length      int            `json:"length"`
	Fingerprint string         `json:"fingerprint"`
	CheckedAt   time.Time      `json:"checked_at"`
	Header      map[string]any `json:"header,omitempty"`
	Claims      map[string]any `json:"claims,omitempty"`

	Issuer      string   `json:"issuer,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	Username    string   `json:"username,omitempty"`
	ClientID    string   `json:"client_id,omitempty"`
	Audiences   []string `json:"audiences,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	WLCGVersion string   `json:"wlcg_version,omitempty"`
	TokenID     string   `json:"token_id,omitempty"`
	KeyID       string   `json:"key_id,omitempty"`
	Alg         string   `json:"alg,omitempty"`
	Type        string   `json:"typ,omitempty"`

	IssuedAt         *time.Time `json:"issued_at,omitempty"`
	NotBefore        *time.Time `json:"not_before,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	ExpiresInSeconds *int64     `json:"expires_in_seconds"`
	Expired          *bool      `json:"expired"`
	Valid            *bool      `json:"valid"`

	Warnings     []Warning `json:"warnings"`
	Verification *Verdict  `json:"verification,omitempty"`
}

// NewReport builds the Report for info and its warnings at now. Set
// Verification yourself after Verify.
func NewReport(info *Info, warns []Warning, now time.Time) Report {
	r := Report{CheckedAt: now.UTC().Truncate(time.Second), Warnings: warns}
	if r.Warnings == nil {
		r.Warnings = []Warning{}
	}
	if info == nil {
		r.Format = FormatOpaque
		return r
	}
	r.Format = info.Format
	r.Length = info.Length
	r.Fingerprint = info.Fingerprint()
	r.Header = info.Header.All
	r.KeyID, r.Alg, r.Type = info.Header.KeyID, info.Header.Alg, info.Header.Type
	if !info.IsJWT {
		return r
	}
	r.Claims = info.Claims
	r.Issuer, r.Subject, r.Username, r.ClientID = info.Issuer, info.Subject, info.Username, info.ClientID
	r.Audiences, r.Scopes, r.Groups = info.Audiences, info.Scopes, info.Groups
	r.WLCGVersion, r.TokenID = info.WLCGVersion, info.JTI
	r.IssuedAt = utcPtr(info.IssuedAt)
	r.NotBefore = utcPtr(info.NotBefore)
	r.ExpiresAt = utcPtr(info.Expiry)

	// A present but unusable exp or nbf makes the token invalid: no
	// service can tell when it is valid.
	unusable := info.Expiry.IsZero() && info.Has("exp") || info.NotBefore.IsZero() && info.Has("nbf")
	valid := !unusable && (info.NotBefore.IsZero() || !now.Before(info.NotBefore))
	if !info.Expiry.IsZero() {
		d := info.Expiry.Sub(now)
		secs := int64(d / time.Second)
		if d%time.Second < 0 {
			secs-- // floor: half a second past exp is -1, not 0
		}
		expired := !now.Before(info.Expiry)
		r.ExpiresInSeconds, r.Expired = &secs, &expired
		valid = valid && !expired
	}
	r.Valid = &valid
	return r
}

func utcPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// JSON returns the indented Report for info (see Report for the fields),
// ending in a newline.
func JSON(info *Info, warns []Warning, now time.Time) ([]byte, error) {
	return NewReport(info, warns, now).JSON()
}

// JSON returns the indented report, ending in a newline.
func (r Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
