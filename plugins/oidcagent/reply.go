package oidcagent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenhelper/tokenhelper/helper"
)

// parseReply decodes one reply. Its errors say what was wrong with the
// reply, never what it contained.
func parseReply(ep Endpoint, raw []byte) (*reply, error) {
	raw = bytes.TrimRight(raw, "\x00 \t\r\n")
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var r reply
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, badReply(ep, fmt.Sprintf("a truncated reply (%d bytes)", len(raw)))
		}
		return nil, badReply(ep, fmt.Sprintf("a malformed reply (%d bytes, not an oidc-agent JSON object)", len(raw)))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badReply(ep, fmt.Sprintf("a malformed reply (%d bytes, data after the JSON object)", len(raw)))
	}
	return &r, nil
}

// failure turns the agent's failure reply into an error naming the fix.
// The agent's error text holds no token material; it is still cleaned of
// control characters, cut short and stripped of anything token-shaped.
func failure(ep Endpoint, r *TokenRequest, text string) *helper.Error {
	t := safeText(text, 200)
	if t == "" {
		t = "no reason given"
	}
	low := strings.ToLower(t)
	var acct, iss string
	if r != nil {
		acct, iss = r.Account, r.Issuer
		if acct != "" {
			iss = ""
		}
	}
	name := acct
	if name == "" {
		name = "NAME"
	}
	subj := "the request"
	switch {
	case acct != "":
		subj = fmt.Sprintf("account %q", acct)
	case iss != "":
		subj = "issuer " + iss
	}
	e := &helper.Error{Kind: helper.KindUnavailable, Err: fmt.Errorf("%w: %s", ErrAgentFailure, t)}
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(low, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("no account configured with that short name"):
		e.Kind, e.Err = helper.KindConfig, ErrUnknownAccount
		e.Msg = fmt.Sprintf("oidc-agent at %s has no account named %q", ep, acct)
		e.Fix = "create it with: oidc-gen " + name + " (oidc-add -l lists your accounts)"
	case has("account not loaded", "currently not loaded"):
		e.Kind, e.Err = helper.KindLoginNeeded, ErrNotLoaded
		if acct == "" && iss != "" {
			e.Msg = "no account for issuer " + iss + " is loaded in oidc-agent"
			e.Fix = "run: oidc-add NAME for an account of that issuer (oidc-add -l lists them; oidc-gen --issuer " + iss + " NAME creates one)"
		} else {
			e.Msg = subjectCap(subj) + " is not loaded in oidc-agent"
			e.Fix = "run: oidc-add " + name
		}
	case has("agent locked"):
		e.Kind, e.Err = helper.KindLoginNeeded, fmt.Errorf("%w: %s", ErrAgentFailure, t)
		e.Msg = "oidc-agent is locked"
		e.Fix = "unlock it with: oidc-add -X"
	case has("cancelled password prompt", "canceled password prompt", "reached timeout"):
		e.Kind, e.Err = helper.KindLoginNeeded, fmt.Errorf("%w: %s", ErrNotLoaded, t)
		e.Msg = "oidc-agent could not load " + subj + ": " + t
		e.Fix = "run: oidc-add " + name
	case strings.HasPrefix(low, "invalid_grant"), has("refresh token expired", "no refresh token", "malformed refresh token", "could not get a refresh token"):
		e.Kind = helper.KindLoginNeeded
		e.Msg = "oidc-agent could not refresh " + subj + ": " + t
		e.Fix = "the refresh token expired or was revoked: run oidc-gen " + name + " --reauthenticate"
	case strings.HasPrefix(low, "invalid_client"):
		e.Kind = helper.KindLoginNeeded
		e.Msg = "the provider no longer accepts the client of " + subj + ": " + t
		e.Fix = "register the account again: oidc-gen -d " + name + ", then oidc-gen " + name
	case has("operation forbidden"):
		e.Kind = helper.KindDenied
		e.Msg = "oidc-agent refused " + subj + " (operation forbidden: was the confirmation prompt denied?)"
		e.Fix = "allow the request in the oidc-agent prompt, or load the account without --confirm: oidc-add " + name
	case strings.HasPrefix(low, "invalid_scope"), strings.HasPrefix(low, "access_denied"),
		strings.HasPrefix(low, "invalid_target"), strings.HasPrefix(low, "unauthorized_client"),
		has("denied", "not allowed", "forbidden"):
		e.Kind = helper.KindDenied
		e.Msg = "the provider refused the token for " + subj + ": " + t
		e.Fix = "ask only for scopes and audiences the account's client is registered for (see the client's page at the provider)"
	case strings.HasPrefix(low, "bad request"):
		e.Msg = "oidc-agent rejected the request for " + subj + ": " + t
		e.Fix = "this oidc-agent may be too old or too new for tokenhelper: check oidc-agent --version (4.2.6 is tested)"
	default:
		e.Msg = "oidc-agent could not get a token for " + subj + ": " + t
		if r == nil {
			e.Msg = "oidc-agent failed: " + t
		}
		e.Fix = "retry; if it persists, check that the provider is reachable and see the agent's log (syslog), or try: oidc-token " + name
	}
	return e
}

func subjectCap(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// safeText makes text from the agent fit for a one-line message: control
// and non-printable characters become spaces, runs of spaces collapse,
// token-shaped words are redacted, and the result is cut to max bytes.
func safeText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	var words []string
	for w := range strings.FieldsFuncSeq(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		if len(w) >= 32 && helper.IsB64Token(strings.TrimRight(w, ".,;:)\"'")) {
			w = "[redacted]"
		}
		words = append(words, w)
	}
	out := strings.Join(words, " ")
	if len(out) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = strings.TrimRight(out[:cut], " ") + "…"
	}
	return out
}

// jwtClaims reads exp and iss from a JWS compact token without verifying
// it. ok is false for anything that is not a JWT with a JSON payload
// (opaque tokens).
func jwtClaims(tok string) (exp time.Time, iss string, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[1]) > MaxReply {
		return time.Time{}, "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, "", false
	}
	var c struct {
		Exp json.RawMessage `json:"exp"`
		Iss json.RawMessage `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return time.Time{}, "", false
	}
	var n json.Number
	if len(c.Exp) > 0 && json.Unmarshal(c.Exp, &n) == nil {
		exp = unixTime(n)
	}
	var s string
	if len(c.Iss) > 0 && json.Unmarshal(c.Iss, &s) == nil {
		iss = cleanIssuer(s)
	}
	return exp, iss, true
}

// cleanIssuer returns s if it can be an issuer URL worth showing, else "".
func cleanIssuer(s string) string {
	if len(s) > 2048 || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return ""
	}
	return s
}
