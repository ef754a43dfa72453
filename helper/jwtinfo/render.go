package jwtinfo

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// RenderOptions controls Render.
type RenderOptions struct {
	// Now is the time validity is judged at. Zero means time.Now().
	Now time.Time
	// Location is the zone times are shown in (with the zone name). Nil
	// means time.Local.
	Location *time.Location
	// Width is the line width wrapped lists aim for. Zero means 80.
	Width int
}

// TimeLayout is how Render shows times: "2026-04-23 11:00:19 +0200 CEST".
const TimeLayout = "2006-01-02 15:04:05 -0700 MST"

const labelWidth = 12 // len("Time to live"), as in `lsstfr token`

// maxValue bounds how much of one claim value Render shows.
const maxValue = 200

// FormatTTL formats a duration the way Render shows time to live: Go
// notation truncated to whole seconds ("71h25m46s", "59m0s", "0s"). A
// negative duration gets a leading "-".
func FormatTTL(d time.Duration) string {
	neg := d < 0
	if neg {
		if d == math.MinInt64 {
			d = math.MaxInt64
		} else {
			d = -d
		}
	}
	d = d.Truncate(time.Second)
	if neg && d != 0 {
		return "-" + d.String()
	}
	return d.String()
}

// Render writes a human-readable description of the token as aligned
// "Label        : value" lines, then the warnings. It never writes the raw
// token or its signature; claim values with control characters are shown
// quoted and escaped, and very long values are cut.
func Render(w io.Writer, info *Info, warns []Warning, opts RenderOptions) error {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Width <= 0 {
		opts.Width = 80
	}
	r := &renderer{w: bufio.NewWriter(w), opts: opts}
	if info == nil {
		r.line("Token", "(none)")
		return r.w.Flush()
	}
	switch info.Format {
	case FormatJWT:
		r.jwt(info)
	case FormatJWE:
		desc := fmt.Sprintf("encrypted JWT (JWE), %d characters", info.Length)
		var alg []string
		if info.Header.Alg != "" {
			alg = append(alg, "alg "+clean(info.Header.Alg))
		}
		if info.Header.Enc != "" {
			alg = append(alg, "enc "+clean(info.Header.Enc))
		}
		if len(alg) > 0 {
			desc += " (" + strings.Join(alg, ", ") + ")"
		}
		r.line("Token", desc)
		r.line("Fingerprint", info.Fingerprint())
		r.line("Time to live", "unknown: only the token's audience can decrypt it")
	default:
		r.line("Token", fmt.Sprintf("opaque (not a JWT), %d characters", info.Length))
		r.line("Fingerprint", info.Fingerprint())
		r.line("Time to live", "unknown: an opaque token's validity cannot be determined locally, only by its issuer")
	}
	if len(warns) == 0 {
		r.line("Warnings", "none")
	} else {
		// One "- " item per warning, wrapped under its own text.
		label := "Warnings"
		for _, wn := range warns {
			words := strings.Fields(clean(wn.Msg) + " [" + clean(wn.Code) + "]")
			for i, l := range wrapWords(words, r.avail()-2) {
				if i == 0 {
					l = "- " + l
				} else {
					l = "  " + l
				}
				r.line(label, l)
				label = ""
			}
		}
	}
	return r.w.Flush()
}

type renderer struct {
	w    *bufio.Writer
	opts RenderOptions
}

// line writes "Label        : value"; an empty label continues the
// previous entry, indented to the value column.
func (r *renderer) line(label, value string) {
	if label == "" {
		fmt.Fprintf(r.w, "%*s%s\n", labelWidth+3, "", value)
		return
	}
	fmt.Fprintf(r.w, "%-*s : %s\n", labelWidth, label, value)
}

// lines writes values one per line under one label.
func (r *renderer) lines(label string, values []string) {
	for i, v := range values {
		if i > 0 {
			label = ""
		}
		r.line(label, v)
	}
}

// avail is the room for values right of the label column.
func (r *renderer) avail() int { return max(r.opts.Width-labelWidth-3, 20) }

// wrapped writes words under one label, wrapped to the width.
func (r *renderer) wrapped(label string, words []string) {
	r.lines(label, wrapWords(words, r.avail()))
}

// wrapWords joins words with spaces into lines of at most avail runes (a
// longer word gets a line of its own).
func wrapWords(words []string, avail int) []string {
	var out []string
	cur := ""
	for _, wd := range words {
		switch {
		case cur == "":
			cur = wd
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(wd) <= avail:
			cur += " " + wd
		default:
			out = append(out, cur)
			cur = wd
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func (r *renderer) time(t time.Time) string {
	return t.In(r.opts.Location).Format(TimeLayout)
}

func (r *renderer) jwt(info *Info) {
	absent := func(claim string) string {
		if info.Has(claim) {
			return "(unusable: see warnings)"
		}
		return "(missing)"
	}
	or := func(v, claim string) string {
		if v == "" {
			return absent(claim)
		}
		return clean(v)
	}

	r.line("Issuer", or(info.Issuer, "iss"))
	r.line("WLCG version", or(info.WLCGVersion, "wlcg.ver"))
	sub := or(info.Subject, "sub")
	if info.Username != "" && info.Username != info.Subject {
		sub += " (" + clean(info.Username) + ")"
	}
	r.line("Subject", sub)
	if info.ClientID != "" {
		r.line("Client", clean(info.ClientID))
	}

	switch auds := cleanAll(info.Audiences); len(auds) {
	case 0:
		r.line("Audience", absent("aud"))
	case 1:
		a := auds[0]
		if info.Audiences[0] == AnyAudience {
			a += " (any service)"
		}
		r.line("Audience", a)
	default:
		r.lines("Audiences", auds)
	}

	// Authorization scopes (storage.*, compute.*) one per line, sorted:
	// they decide what the token may do. Other scopes wrapped after them.
	var authz, other []string
	for _, s := range cleanAll(info.Scopes) {
		if strings.HasPrefix(s, "storage.") || strings.HasPrefix(s, "compute.") {
			authz = append(authz, s)
		} else {
			other = append(other, s)
		}
	}
	slices.Sort(authz)
	slices.Sort(other)
	switch len(authz) + len(other) {
	case 0:
		if info.Has("scope") || info.Has("scp") {
			r.line("Scopes", "(none)")
		} else {
			r.line("Scopes", "(no scope claim)")
		}
	case 1:
		r.line("Scope", slices.Concat(authz, other)[0])
	default:
		r.lines("Scopes", authz)
		label := "Scopes"
		if len(authz) > 0 {
			label = ""
		}
		r.wrapped(label, other)
	}

	if len(info.Groups) > 0 {
		r.wrapped("Groups", cleanAll(info.Groups))
	}
	if len(info.Assurance) > 0 {
		r.lines("Assurance", cleanAll(info.Assurance))
	}
	if info.ACR != "" {
		r.line("ACR", clean(info.ACR))
	}

	if !info.IssuedAt.IsZero() {
		r.line("Issued at", r.time(info.IssuedAt))
	} else {
		r.line("Issued at", absent("iat"))
	}
	if !info.NotBefore.IsZero() {
		r.line("Not before", r.time(info.NotBefore))
	} else if info.Has("nbf") {
		r.line("Not before", absent("nbf"))
	}
	if !info.Expiry.IsZero() {
		exp := r.time(info.Expiry)
		start := info.IssuedAt
		if start.IsZero() {
			start = info.NotBefore
		}
		if !start.IsZero() && info.Expiry.After(start) {
			exp += " (lifetime " + FormatTTL(info.Expiry.Sub(start)) + ")"
		}
		r.line("Expires", exp)
	} else {
		r.line("Expires", absent("exp"))
	}
	r.line("Time to live", ttl(info, r.opts.Now))

	r.line("Token ID", or(info.JTI, "jti"))
	kid := "(none)"
	if info.Header.KeyID != "" {
		kid = clean(info.Header.KeyID)
	}
	switch alg := info.Header.Alg; alg {
	case "":
		kid += ", no alg"
	case "none":
		kid += ", alg none (unsigned)"
	default:
		kid += ", alg " + clean(alg)
	}
	r.line("Key ID", kid)
	if typ := info.Header.Type; typ != "" && !strings.EqualFold(typ, "JWT") {
		r.line("Token type", clean(typ))
	}
}

// ttl describes the time to live at now.
func ttl(info *Info, now time.Time) string {
	switch {
	case info.Expiry.IsZero():
		return "unknown (no usable exp claim)"
	case !now.Before(info.Expiry):
		return "expired " + FormatTTL(now.Sub(info.Expiry)) + " ago"
	case !info.NotBefore.IsZero() && now.Before(info.NotBefore):
		return "not yet valid for " + FormatTTL(info.NotBefore.Sub(now)) +
			", then valid for " + FormatTTL(info.Expiry.Sub(info.NotBefore))
	}
	return FormatTTL(info.Expiry.Sub(now))
}

// clean makes an untrusted string safe to print on a terminal: a value
// with control or non-printable characters (or invalid UTF-8) is shown
// quoted and escaped, and values longer than maxValue runes are cut.
func clean(s string) string {
	cut := false
	if utf8.RuneCountInString(s) > maxValue {
		rs := []rune(s)
		s, cut = string(rs[:maxValue]), true
	}
	safe := utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r)
	}) < 0
	if !safe {
		s = strconv.Quote(s)
	}
	if cut {
		s += "…"
	}
	return s
}

func cleanAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = clean(s)
	}
	return out
}

// quote is for claim values inside messages: always quoted, escaped and
// cut, so a message stays one line whatever the token holds.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxValue {
		return strconv.Quote(string([]rune(s)[:maxValue])) + "…"
	}
	return strconv.Quote(s)
}
