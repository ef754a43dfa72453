package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/mdp/qrterminal/v3"
	"rsc.io/qr"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

// Device flow limits (RFC 8628).
const (
	defaultDeviceLifetime = 10 * time.Minute // when expires_in is missing
	maxDeviceLifetime     = time.Hour
	defaultPollInterval   = 5 * time.Second // RFC 8628 3.2: "clients MUST use 5"
	maxPollInterval       = time.Minute
	slowDownStep          = 5 * time.Second // RFC 8628 3.5
	maxPollFailures       = 5               // consecutive transport failures before giving up
	maxQRText             = 512
)

// deviceAuthorization is the device authorization response (RFC 8628
// 3.2). verification_url is an old spelling some providers use.
type deviceAuthorization struct {
	DeviceCode              string  `json:"device_code"`
	UserCode                string  `json:"user_code"`
	VerificationURI         string  `json:"verification_uri"`
	VerificationURL         string  `json:"verification_url"`
	VerificationURIComplete string  `json:"verification_uri_complete"`
	ExpiresIn               flexInt `json:"expires_in"`
	Interval                flexInt `json:"interval"`
}

// deviceCode is a checked device authorization response.
type deviceCode struct {
	deviceCode, userCode string
	verify, complete     string // complete: "" when absent or unusable
	lifetime, interval   time.Duration
}

// parseDeviceAuthorization checks a device authorization response: a
// printable device code, a user code that is safe to show, an https
// verification URI; lifetime and interval within bounds (defaults when
// missing).
func parseDeviceAuthorization(body []byte) (*deviceCode, error) {
	var da deviceAuthorization
	if err := json.Unmarshal(body, &da); err != nil {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider's device authorization answer is not valid JSON").WithFix("retry later")
	}
	if da.VerificationURI == "" {
		da.VerificationURI = da.VerificationURL
	}
	verify, ok := userURL(da.VerificationURI)
	userCode := clean(da.UserCode, 64)
	if !ok || userCode == "" || !printableASCII(da.DeviceCode) || len(da.DeviceCode) > 4096 {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider's device authorization answer lacks a usable code or verification URI").
			WithFix("retry later; if it persists, report it to the provider's administrators")
	}
	dc := &deviceCode{deviceCode: da.DeviceCode, userCode: userCode, verify: verify}
	if c, ok := userURL(da.VerificationURIComplete); ok {
		dc.complete = c
	}
	dc.lifetime = time.Duration(da.ExpiresIn) * time.Second
	if dc.lifetime <= 0 {
		dc.lifetime = defaultDeviceLifetime
	}
	dc.lifetime = min(dc.lifetime, maxDeviceLifetime)
	dc.interval = time.Duration(da.Interval) * time.Second
	if dc.interval <= 0 {
		dc.interval = defaultPollInterval
	}
	dc.interval = min(dc.interval, maxPollInterval)
	return dc, nil
}

// deviceView renders the device flow for a person: a live countdown
// redrawn in place on a terminal, else one plain line per state change.
type deviceView struct {
	w     io.Writer
	live  bool
	dirty bool // a live status line is on screen
}

func (v *deviceView) printf(format string, args ...any) {
	v.clear()
	fmt.Fprintf(v.w, format, args...)
}

func (v *deviceView) status(s string) {
	fmt.Fprint(v.w, "\r\x1b[K"+s)
	v.dirty = true
}

func (v *deviceView) clear() {
	if v.dirty {
		fmt.Fprint(v.w, "\r\x1b[K")
		v.dirty = false
	}
}

// userURL accepts a URL to show a person: http(s) with a host; plain
// http only on loopback (a provider could otherwise send people to a
// page anyone on the path can change).
func userURL(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 2048 || clean(raw, 2048) != raw || strings.ContainsAny(raw, " \t") {
		return "", false
	}
	if checkEndpoint(raw) != nil {
		return "", false
	}
	if _, err := url.Parse(raw); err != nil {
		return "", false
	}
	return raw, true
}

// deviceFlow runs the device authorization grant: request codes, show
// them, poll the token endpoint per RFC 8628 3.4-3.5. It returns the token
// response and when the successful poll started.
func (b *Backend) deviceFlow(ctx context.Context, p *provider, a *account, auth clientAuth, scopes, auds []string) (*tokenResponse, time.Time, error) {
	if a.Endpoints.DeviceAuthorization == "" {
		return nil, time.Time{}, helper.Errorf(helper.KindConfig, "%s offers no device flow (no device_authorization_endpoint)", a.Issuer).
			WithFix("use another flow: tokenhelper login%s --flow password (if an administrator enabled it for client %s)", b.flag(), a.ClientID)
	}
	form := url.Values{}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if len(auds) > 0 {
		form.Set("audience", strings.Join(auds, " "))
	}
	// Unlike golang.org/x/oauth2's DeviceAuth, a confidential client
	// authenticates here too (RFC 8628 3.1 refers to RFC 6749 3.2.1).
	start := b.o.Now()
	status, body, err := p.postForm(ctx, a.Endpoints.DeviceAuthorization, form, &auth, "a device code")
	if err != nil {
		return nil, start, err
	}
	if oe := parseOAuthError(status, body, "device authorization"); oe != nil {
		if oe.Code == "invalid_scope" {
			return nil, start, &helper.Error{Kind: helper.KindDenied, Err: oe,
				Msg: fmt.Sprintf("%s refused the scopes %q: %s", a.Issuer, strings.Join(scopes, " "), oe.Description),
				Fix: fmt.Sprintf("change scopes in [profiles.%s] to ones the provider offers", b.p.Name)}
		}
		return nil, start, b.grantError(a, oe)
	}
	if status < 200 || status > 299 {
		return nil, start, httpStatusError(status, body, "the device authorization endpoint")
	}
	da, err := parseDeviceAuthorization(body)
	if err != nil {
		return nil, start, err
	}
	verify, userCode, complete, hasComplete := da.verify, da.userCode, da.complete, da.complete != ""
	lifetime, interval := da.lifetime, da.interval
	expires := start.Add(lifetime)

	v := &deviceView{w: b.out(), live: b.terminal()}
	b.showDeviceCode(v, a, verify, userCode, complete, hasComplete, lifetime)

	pollForm := url.Values{"grant_type": {grantDeviceCode}, "device_code": {da.deviceCode}}
	next := b.o.Now().Add(interval)
	failures := 0
	for {
		if err := b.waitPoll(ctx, v, next, expires); err != nil {
			if errors.Is(err, errCodeExpired) {
				return nil, start, b.codeExpired(userCode, lifetime)
			}
			v.clear()
			return nil, start, err
		}
		pollStart := b.o.Now()
		tr, err := p.token(ctx, a.Endpoints.Token, cloneForm(pollForm), &auth)
		if err == nil {
			v.printf("Approved.\n")
			return tr, pollStart, nil
		}
		var oe *oauthError
		switch {
		case errors.As(err, &oe):
			failures = 0
			switch oe.Code {
			case "authorization_pending":
			case "slow_down":
				interval = min(interval+slowDownStep, maxPollInterval)
				v.printf("The provider asks to poll less often: now every %s.\n", interval)
			case "access_denied":
				v.clear()
				return nil, start, &helper.Error{Kind: helper.KindDenied, Err: oe,
					Msg: fmt.Sprintf("the login with code %s was denied at %s", userCode, a.Issuer),
					Fix: "run: tokenhelper login" + b.flag() + " again, and approve the request whose code matches"}
			case "expired_token":
				v.clear()
				return nil, start, b.codeExpired(userCode, lifetime)
			case "invalid_grant":
				v.clear()
				return nil, start, &helper.Error{Kind: helper.KindDenied, Err: oe,
					Msg: fmt.Sprintf("%s no longer knows the device code (%s)", a.Issuer, orCode(oe)),
					Fix: "run: tokenhelper login" + b.flag() + " again"}
			default:
				v.clear()
				return nil, start, b.grantError(a, oe)
			}
		case ctx.Err() != nil:
			v.clear()
			return nil, start, ctx.Err()
		case helper.IsKind(err, helper.KindUnavailable):
			failures++
			if failures >= maxPollFailures {
				v.clear()
				return nil, start, err
			}
			v.printf("No answer from the provider (%s); trying again.\n", shortReason(err))
		default:
			v.clear()
			return nil, start, err
		}
		next = b.o.Now().Add(interval)
	}
}

var errCodeExpired = errors.New("device code expired")

func (b *Backend) codeExpired(code string, lifetime time.Duration) error {
	return &helper.Error{Kind: helper.KindLoginNeeded,
		Msg: fmt.Sprintf("the code %s expired before the login was approved", code),
		Fix: fmt.Sprintf("run: tokenhelper login%s again, and approve within %s", b.flag(), lifetime)}
}

// waitPoll waits until next (the next poll) while showing the countdown
// to expires. It returns errCodeExpired when the code expires first.
func (b *Backend) waitPoll(ctx context.Context, v *deviceView, next, expires time.Time) error {
	for {
		now := b.o.Now()
		if !now.Before(expires) {
			v.clear()
			return errCodeExpired
		}
		if !now.Before(next) {
			return nil
		}
		d := min(next.Sub(now), expires.Sub(now))
		if v.live {
			left := expires.Sub(now)
			// Whole seconds, rounded up: the display changes at each
			// redraw and shows 0s only once expired.
			shown := (left + time.Second - 1).Truncate(time.Second)
			v.status(fmt.Sprintf("Waiting for approval... the code expires in %s", jwtinfo.FormatTTL(shown)))
			// Redraw on the second: sleep to the next whole second of
			// the countdown.
			if frac := left % time.Second; frac > 0 && frac < d {
				d = frac
			} else if d > time.Second {
				d = time.Second
			}
		}
		if err := b.o.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// showDeviceCode prints the instructions: where to go, the code, the QR
// code of the complete URI on a terminal.
func (b *Backend) showDeviceCode(v *deviceView, a *account, verify, code, complete string, hasComplete bool, lifetime time.Duration) {
	w := v.w
	if v.live {
		fmt.Fprintf(w, "To log in to %s (profile %q), open this page on any device:\n\n    %s\n\nand enter the code:\n\n    %s\n\n",
			a.Issuer, b.p.Name, verify, code)
		if hasComplete && writeQR(io.Discard, complete) {
			fmt.Fprintf(w, "or scan this QR code, which opens the page with the code filled in:\n\n")
			writeQR(w, complete)
			fmt.Fprintln(w)
		}
		return
	}
	fmt.Fprintf(w, "To log in to %s (profile %q), open this page on any device and enter the code %s:\n    %s\n",
		a.Issuer, b.p.Name, code, verify)
	if hasComplete {
		fmt.Fprintf(w, "or open this address, which has the code filled in:\n    %s\n", complete)
	}
	fmt.Fprintf(w, "Waiting for approval; the code expires in %s.\n", lifetime)
}

// writeQR renders text as a QR code with half blocks (two rows per line);
// it reports false, writing nothing, when the text cannot be encoded.
func writeQR(w io.Writer, text string) bool {
	if len(text) > maxQRText {
		return false
	}
	if _, err := qr.Encode(text, qr.L); err != nil {
		return false
	}
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level:          qr.L,
		Writer:         w,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      2,
	})
	return true
}

func cloneForm(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// shortReason is the part of a transport error after the last ": ".
func shortReason(err error) string {
	var he *helper.Error
	if errors.As(err, &he) {
		m := he.Msg
		if i := strings.LastIndex(m, ": "); i >= 0 {
			return m[i+2:]
		}
		return m
	}
	return "network error"
}
