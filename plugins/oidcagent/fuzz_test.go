package oidcagent

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// FuzzInterpret feeds arbitrary replies through the reply decoding the
// client uses: it never panics, every error is one clean line, and no
// error ever shows the reply's access token.
func FuzzInterpret(f *testing.F) {
	f.Add([]byte(`{"status":"success","access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8vaWFtLmV4YW1wbGUifQ.c2ln","issuer":"https://iam.example/","expires_at":1900000000}`))
	f.Add([]byte(`{"status":"failure","error":"account not loaded"}`))
	f.Add([]byte(`{"status":"success","info":["a","b"]}`))
	f.Add([]byte(`{"status":"succ`))
	f.Add([]byte("\x00\xff"))
	ep := Endpoint{Network: "unix", Address: "/run/agent.sock", Source: SourceSock}
	f.Fuzz(func(t *testing.T, data []byte) {
		var probe struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(data, &probe)
		check := func(err error) {
			if err == nil {
				return
			}
			msg := err.Error()
			if strings.ContainsFunc(msg, func(r rune) bool { return r != ' ' && (unicode.IsSpace(r) || !unicode.IsPrint(r)) }) {
				t.Fatalf("error is not one clean line: %q", msg)
			}
			if len(probe.AccessToken) >= 16 && strings.Contains(msg, probe.AccessToken) {
				t.Fatalf("error shows the token: %q", msg)
			}
		}
		rep, err := interpret(ep, data, &TokenRequest{Account: "acc"})
		check(err)
		if err != nil {
			return
		}
		tok, err := tokenFromReply(ep, rep)
		check(err)
		if err == nil && tok.AccessToken != rep.AccessToken {
			t.Fatal("token changed")
		}
		_, ok := parseAccounts(rep.Info)
		_ = ok
	})
}

// FuzzJWTClaims: reading exp and iss never panics and never returns a
// time before 1970 or after 9999.
func FuzzJWTClaims(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8vaWFtLmV4YW1wbGUifQ.c2ln")
	f.Add("a.b.c")
	f.Add("opaque")
	f.Fuzz(func(t *testing.T, tok string) {
		exp, iss, _ := jwtClaims(tok)
		if !exp.IsZero() && (exp.Unix() <= 0 || exp.Unix() > maxUnix) {
			t.Fatalf("exp %v", exp)
		}
		if strings.ContainsFunc(iss, unicode.IsControl) {
			t.Fatalf("iss %q", iss)
		}
	})
}
