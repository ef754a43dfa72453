package testbed

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
)

// The device page is where a person completes a device flow, as on IAM's
// /device page: log in with a user name and password, enter the user code,
// then approve or deny the request. No cookies: the consent form carries a
// one-time session id.

var pageTemplates = template.Must(template.New("layout").Parse(`{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tokenhelper test bed</title>
<style>
body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}
h1{font-size:1.4em} label{display:block;margin:.8em 0 .2em} input[type=text],input[type=password]{width:100%;padding:.4em;font-size:1em}
button{margin:1em .5em 0 0;padding:.5em 1.2em;font-size:1em} .err{color:#a00} code{background:#eee;padding:0 .2em}
.note{color:#666;font-size:.9em}
</style></head><body>
<h1>tokenhelper test bed</h1>{{end}}
{{define "foot"}}<p class="note">A loopback identity provider for tests and demos. Issuer: <code>{{.Issuer}}</code></p></body></html>{{end}}

{{define "login"}}{{template "head" .}}
<p>Log in and enter the code your device shows to approve its request.</p>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<label for="user_code">Code</label><input type="text" id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" autofocus>
<label for="username">User name</label><input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username">
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" name="step" value="login">Continue</button>
</form>
{{template "foot" .}}{{end}}

{{define "consent"}}{{template "head" .}}
<p>Logged in as <b>{{.Username}}</b>.</p>
<p>The client <b>{{.Client}}</b> asks for a token with the code <code>{{.UserCode}}</code>.</p>
{{if .Scopes}}<p>Scopes it will get:</p><ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{if .Dropped}}<p class="note">Requested but not allowed for you (dropped): {{range .Dropped}}<code>{{.}}</code> {{end}}</p>{{end}}
{{if .Audiences}}<p>Audience: {{range .Audiences}}<code>{{.}}</code> {{end}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="session" value="{{.Session}}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
{{template "foot" .}}{{end}}

{{define "done"}}{{template "head" .}}
<p>{{.Message}}</p>
<p class="note">You can close this window and return to your device.</p>
{{template "foot" .}}{{end}}

{{define "index"}}{{template "head" .}}
<p>This is a loopback OpenID provider that behaves like INDIGO IAM.</p>
<ul>
<li><a href="{{.Issuer}}/device">Approve a device login</a></li>
<li><a href="{{.Issuer}}/.well-known/openid-configuration">Discovery document</a></li>
<li><a href="{{.Issuer}}/jwk">Signing keys (JWKS)</a></li>
</ul>
{{template "foot" .}}{{end}}
`))

type pageData struct {
	Issuer    string
	Action    string
	Error     string
	UserCode  string
	Username  string
	Client    string
	Scopes    []string
	Dropped   []string
	Audiences []string
	Session   string
	Message   string
}

func (tb *Testbed) renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	d.Issuer = tb.IssuerURL
	d.Action = tb.IssuerURL + pathDevicePage
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	// The status is sent: an error here is a browser that went away (or
	// a template bug, which the web tests catch).
	_ = pageTemplates.ExecuteTemplate(w, name, d)
}

func (tb *Testbed) handleIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	tb.renderPage(w, http.StatusOK, "index", pageData{})
}

func (tb *Testbed) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		tb.renderPage(w, http.StatusOK, "login", pageData{UserCode: r.URL.Query().Get("user_code")})
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			tb.renderPage(w, http.StatusBadRequest, "login", pageData{Error: "The form could not be read."})
			return
		}
		if r.PostForm.Get("session") != "" {
			tb.deviceDecision(w, r)
			return
		}
		tb.deviceLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (tb *Testbed) deviceLogin(w http.ResponseWriter, r *http.Request) {
	d := pageData{UserCode: strings.TrimSpace(r.PostForm.Get("user_code")), Username: strings.TrimSpace(r.PostForm.Get("username"))}
	u, ok := tb.store.checkPassword(d.Username, r.PostForm.Get("password"))
	if !ok {
		d.Error = "Unknown user name or wrong password."
		tb.renderPage(w, http.StatusUnauthorized, "login", d)
		return
	}
	req, err := tb.store.deviceByUserCode(d.UserCode)
	if err != nil {
		d.Error = "No pending request has this code. It may have expired, or been approved or denied already."
		if errors.Is(err, ErrUnknownUserCode) && d.UserCode == "" {
			d.Error = "Enter the code your device shows."
		}
		tb.renderPage(w, http.StatusBadRequest, "login", d)
		return
	}
	d.UserCode = req.UserCode
	c, _ := tb.store.client(req.ClientID)
	d.Client = req.ClientID
	var clientScopes []string
	if c != nil {
		d.Client = c.spec.Name
		clientScopes = c.spec.Scopes
		if len(req.Scopes) == 0 {
			req.Scopes = defaultScopes(c)
		}
	}
	d.Scopes = filterScopes(req.Scopes, u, clientScopes)
	for _, s := range req.Scopes {
		if !contains(d.Scopes, s) {
			d.Dropped = append(d.Dropped, s)
		}
	}
	d.Audiences = req.Audiences
	if len(d.Audiences) == 0 {
		d.Audiences = []string{tb.defaultAudience}
	}
	d.Session = tb.store.newSession(u.Name, req.UserCode)
	tb.renderPage(w, http.StatusOK, "consent", d)
}

func (tb *Testbed) deviceDecision(w http.ResponseWriter, r *http.Request) {
	ws, ok := tb.store.takeSession(r.PostForm.Get("session"))
	if !ok {
		tb.renderPage(w, http.StatusBadRequest, "login", pageData{Error: "This approval form expired or was used already. Log in again."})
		return
	}
	var err error
	msg := ""
	switch r.PostForm.Get("decision") {
	case "approve":
		err = tb.store.approve(ws.userCode, ws.user)
		msg = "Approved: your device will receive its token."
	case "deny":
		err = tb.store.deny(ws.userCode)
		msg = "Denied: your device will be told so."
	default:
		tb.renderPage(w, http.StatusBadRequest, "login", pageData{UserCode: ws.userCode, Username: ws.user, Error: "Choose Approve or Deny."})
		return
	}
	if err != nil {
		tb.renderPage(w, http.StatusConflict, "done", pageData{Message: "The request is no longer pending (it expired, or was approved or denied meanwhile)."})
		return
	}
	tb.renderPage(w, http.StatusOK, "done", pageData{Message: msg})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
