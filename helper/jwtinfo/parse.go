package jwtinfo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Format says what kind of bearer token Parse found.
type Format string

// The formats Parse distinguishes.
const (
	FormatJWT    Format = "jwt"    // a signed JWT (JWS compact serialization): claims readable
	FormatJWE    Format = "jwe"    // an encrypted JWT: only its audience can read the claims
	FormatOpaque Format = "opaque" // anything else: only the issuer knows what it means
)

// AnyAudience is the WLCG Common JWT Profile audience meaning "any relying
// party".
const AnyAudience = "https://wlcg.cern.ch/jwt/v1/any"

// Header is the decoded JOSE header of a token.
type Header struct {
	Alg   string         // "alg": signature algorithm (RS256, ES256, ...)
	KeyID string         // "kid": which issuer key signed the token
	Type  string         // "typ": e.g. "JWT" or "at+jwt"
	Enc   string         // "enc": content encryption, JWE only
	All   map[string]any // every header field, as decoded
}

// Info is what can be read from a bearer token without verifying it.
//
// Raw is the token itself (surrounding whitespace removed). It is a secret:
// it has no JSON form, and Info's String and GoString methods leave it out,
// so an Info passed to fmt or a logger leaks nothing.
type Info struct {
	Raw    string `json:"-"`
	IsJWT  bool   // false: opaque token or JWE, no claims to read
	Format Format // jwt, jwe or opaque
	Length int    // length of Raw in bytes

	Header Header
	Claims map[string]any // every claim; numbers are json.Number

	Issuer      string   // iss
	Subject     string   // sub
	Username    string   // preferred_username, when the issuer adds it
	ClientID    string   // azp, else client_id
	Audiences   []string // aud (a string or an array)
	Scopes      []string // scope (space-separated), else scp (array or string)
	Groups      []string // wlcg.groups, else groups
	WLCGVersion string   // wlcg.ver
	JTI         string   // jti
	ACR         string   // acr
	Assurance   []string // eduperson_assurance
	IssuedAt    time.Time
	NotBefore   time.Time
	Expiry      time.Time // zero: no (usable) exp claim

	// problems holds claims whose type or value is unusable; Check reports
	// them as warnings.
	problems []Warning
}

// String describes the token without any token material.
func (i Info) String() string {
	if i.IsJWT {
		return fmt.Sprintf("jwtinfo.Info(jwt %s, iss=%q, sub=%q)", helper.Fingerprint(i.Raw), i.Issuer, i.Subject)
	}
	return fmt.Sprintf("jwtinfo.Info(%s %s)", i.Format, helper.Fingerprint(i.Raw))
}

// GoString keeps %#v from printing Raw.
func (i Info) GoString() string { return i.String() }

// Fingerprint is a short, non-reversible label for the token, safe to show
// and compare (see helper.Fingerprint).
func (i *Info) Fingerprint() string { return helper.Fingerprint(i.Raw) }

// Has reports whether the claim is present (whatever its type).
func (i *Info) Has(claim string) bool {
	_, ok := i.Claims[claim]
	return ok
}

// Parse reads a bearer token without verifying its signature. Surrounding
// whitespace (C isspace, as in WLCG Bearer Token Discovery) is removed
// first.
//
//   - An empty token is a *helper.Error of KindNoToken.
//   - A string that is not an RFC 6750 b64token, or that is recognisably a
//     JWT but damaged (wrong number of parts, a part that is not base64url
//     or not a JSON object), is a *helper.Error of KindInvalidToken. The
//     message says what is wrong and where, never the token.
//   - A JWE is returned with Format FormatJWE and its header only.
//   - Any other b64token is an opaque token: Format FormatOpaque.
//
// Claims of the wrong type (exp as a string, aud as a number, ...) do not
// fail Parse: the typed field stays empty and Check reports the claim.
func Parse(raw string) (*Info, error) {
	tok := strings.TrimFunc(raw, isCSpace)
	if tok == "" {
		return nil, &helper.Error{
			Kind: helper.KindNoToken,
			Msg:  "the token is empty",
			Fix:  "give a token (argument, file or stdin); to get one run: tokenhelper token",
		}
	}
	if !helper.IsB64Token(tok) {
		return nil, notBearer(tok)
	}
	info := &Info{Raw: tok, Length: len(tok), Format: FormatOpaque}
	parts := strings.Split(tok, ".")
	hdr, hdrOK := decodeObject(parts[0])
	if len(parts) == 1 || !hdrOK {
		return info, nil
	}
	switch {
	case len(parts) == 5 && hdr["enc"] != nil:
		info.Format = FormatJWE
		info.Header = newHeader(hdr)
		return info, nil
	case len(parts) != 3:
		if _, ok := hdr["alg"]; ok {
			return nil, malformed(fmt.Sprintf("it has %d dot-separated parts, a JWT has 3", len(parts)))
		}
		return info, nil
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
		return nil, malformed("its payload (second part) is not base64url")
	}
	if _, ok := decodeObject(parts[1]); !ok {
		return nil, malformed("its payload (second part) is not a JSON object")
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, malformed("its signature (third part) is not base64url")
	}

	claims := jwt.MapClaims{}
	p := jwt.NewParser(jwt.WithJSONNumber())
	t, _, err := p.ParseUnverified(tok, claims)
	// An unknown or missing alg is ErrTokenUnverifiable: the claims are
	// still there to inspect, and Check reports the alg.
	if err != nil && !errors.Is(err, jwt.ErrTokenUnverifiable) {
		return nil, malformed("it cannot be decoded")
	}
	info.IsJWT = true
	info.Format = FormatJWT
	if t != nil && t.Header != nil {
		hdr = t.Header
	}
	info.Header = newHeader(hdr)
	info.Claims = map[string]any(claims)
	info.extract()
	return info, nil
}

func malformed(why string) error {
	return &helper.Error{
		Kind: helper.KindInvalidToken,
		Msg:  "malformed JWT: " + why,
		Fix:  "the token was probably cut or altered when copied; copy it again or get a fresh one (tokenhelper token)",
	}
}

// notBearer explains why tok is not a b64token without echoing it.
func notBearer(tok string) error {
	e := &helper.Error{Kind: helper.KindInvalidToken}
	lower := strings.ToLower(tok)
	switch {
	case strings.HasPrefix(lower, "authorization:"):
		e.Msg = `not a bearer token: it is an HTTP "Authorization:" header line`
		e.Fix = `give the token alone, without "Authorization: Bearer "`
	case strings.HasPrefix(lower, "bearer ") || strings.HasPrefix(lower, "bearer\t"):
		e.Msg = `not a bearer token: it starts with "Bearer "`
		e.Fix = `give the token alone, without the "Bearer " prefix`
	case tok[0] == '{':
		e.Msg = "not a bearer token: it is a JSON document"
		e.Fix = `give only the token (the "access_token" value), e.g. jq -r .access_token`
	case tok[0] == '"' || tok[0] == '\'':
		e.Msg = "not a bearer token: it is quoted"
		e.Fix = "remove the quotes around the token"
	default:
		i := max(0, strings.IndexFunc(tok, func(r rune) bool {
			return r >= utf8.RuneSelf || !helper.IsB64Token(string(r))
		}))
		what := "a character"
		switch c := tok[i]; {
		case c == '=':
			what = `"=" padding`
		case isCSpace(rune(c)):
			what = "whitespace"
		case c < 0x20 || c == 0x7f:
			what = "a control character"
		case c >= utf8.RuneSelf:
			what = "a non-ASCII character"
		}
		e.Msg = fmt.Sprintf("not a bearer token: %s at byte %d of %d is not allowed in an RFC 6750 bearer token", what, i+1, len(tok))
		if isCSpace(rune(tok[i])) {
			e.Fix = "a token is one word: it was probably wrapped or two tokens were pasted together; copy it again"
		} else {
			e.Fix = "copy the token again; a bearer token has only letters, digits and - . _ ~ + / (and = at the end)"
		}
	}
	return e
}

// isCSpace is C isspace in the "C" locale.
func isCSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// decodeObject decodes a base64url segment holding a JSON object.
func decodeObject(seg string) (map[string]any, bool) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, false
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func newHeader(m map[string]any) Header {
	h := Header{All: m}
	h.Alg, _ = m["alg"].(string)
	h.KeyID, _ = m["kid"].(string)
	h.Type, _ = m["typ"].(string)
	h.Enc, _ = m["enc"].(string)
	return h
}

// extract fills the typed fields from Claims, noting unusable claims.
func (i *Info) extract() {
	i.Issuer = i.str("iss")
	i.Subject = i.str("sub")
	i.Username = i.str("preferred_username")
	i.ClientID = i.str("azp")
	if i.ClientID == "" {
		i.ClientID = i.str("client_id")
	}
	i.Audiences = i.strList("aud", false)
	if i.Has("scope") {
		i.Scopes = i.strList("scope", true)
	} else {
		i.Scopes = i.strList("scp", true)
	}
	if i.Has("wlcg.groups") {
		i.Groups = i.strList("wlcg.groups", false)
	} else {
		i.Groups = i.strList("groups", false)
	}
	i.JTI = i.str("jti")
	i.ACR = i.str("acr")
	i.Assurance = i.strList("eduperson_assurance", false)
	i.IssuedAt = i.date("iat")
	i.NotBefore = i.date("nbf")
	i.Expiry = i.date("exp")

	switch v, ok := i.Claims["wlcg.ver"]; v := v.(type) {
	case string:
		i.WLCGVersion = v
	case json.Number:
		i.WLCGVersion = v.String()
		i.problem(CodeWLCGVersion, fmt.Sprintf(`wlcg.ver is the number %s; the profile requires the string "1.0"`, v))
	default:
		if ok {
			i.problem(CodeClaimType, fmt.Sprintf("wlcg.ver is %s, not a string", typeName(v)))
		}
	}
}

func (i *Info) problem(code, msg string) {
	i.problems = append(i.problems, Warning{Code: code, Msg: msg})
}

func (i *Info) str(claim string) string {
	v, ok := i.Claims[claim]
	if !ok {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	default:
		i.problem(CodeClaimType, fmt.Sprintf("%s is %s, not a string", claim, typeName(v)))
		return ""
	}
}

// strList reads a claim that is a string or an array of strings. With
// spaceSep, a string is split on spaces (scope); otherwise it is one item
// (aud).
func (i *Info) strList(claim string, spaceSep bool) []string {
	v, ok := i.Claims[claim]
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		if spaceSep {
			return strings.Fields(v)
		}
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		bad := 0
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				bad++
				continue
			}
			if spaceSep {
				out = append(out, strings.Fields(s)...)
			} else {
				out = append(out, s)
			}
		}
		if bad > 0 {
			i.problem(CodeClaimType, fmt.Sprintf("%s has %d item(s) that are not strings (ignored)", claim, bad))
		}
		if claim == "scope" {
			i.problem(CodeClaimType, "scope is an array; RFC 8693 and the WLCG profile require a space-separated string")
		}
		return out
	default:
		i.problem(CodeClaimType, fmt.Sprintf("%s is %s, not a string or an array of strings", claim, typeName(v)))
		return nil
	}
}

// maxNumericDate is 9999-12-31T23:59:59Z: later dates cannot be shown or
// marshalled as RFC 3339.
const maxNumericDate = 253402300799

func (i *Info) date(claim string) time.Time {
	var f float64
	v, ok := i.Claims[claim]
	if !ok {
		return time.Time{}
	}
	switch v := v.(type) {
	case json.Number:
		var err error
		f, err = strconv.ParseFloat(string(v), 64)
		if err != nil {
			i.problem(CodeClaimType, fmt.Sprintf("%s is out of range (%s)", claim, clip(string(v), 32)))
			return time.Time{}
		}
	case float64:
		f = v
	case string:
		i.problem(CodeClaimType, fmt.Sprintf("%s is a string, not a NumericDate (seconds since 1970)", claim))
		return time.Time{}
	default:
		i.problem(CodeClaimType, fmt.Sprintf("%s is %s, not a NumericDate (seconds since 1970)", claim, typeName(v)))
		return time.Time{}
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		i.problem(CodeClaimType, fmt.Sprintf("%s is out of range (%s)", claim, strconv.FormatFloat(f, 'g', 10, 64)))
		return time.Time{}
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC()
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("a %T", v)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
