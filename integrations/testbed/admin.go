package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// The admin API is for scripts driving a running test bed (the
// tokenhelper-testbed command, make demo, end-to-end tests in shell). Every
// call needs "Authorization: Bearer <admin token>"; the token is in
// Dir/admin-token. Answers are JSON; errors are {"error": "..."} with a 4xx
// status.
//
//	GET    /admin/device/pending                 pending device requests
//	POST   /admin/device/approve   user_code, user
//	POST   /admin/device/deny      user_code
//	POST   /admin/device/approve-next  user, wait (Go duration, default 30s)
//	POST   /admin/clock/advance    by (Go duration)
//	GET    /admin/counters         request counters
//	POST   /admin/counters/reset
//	GET    /admin/faults           armed faults
//	POST   /admin/faults           JSON {"endpoint", "kind", "status", "delay", "oauth_error", "size", "count", "grant"}
//	DELETE /admin/faults[?endpoint=E]
//	POST   /admin/clients          JSON ClientSpec fields (id, secret, name, grants, allow_password, public, scopes)

func (tb *Testbed) handleAdmin(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !secretEqual(strings.TrimSpace(tok), tb.adminToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="test bed admin"`)
		adminError(w, http.StatusUnauthorized, "missing or wrong admin token (see admin-token in the test bed directory)")
		return
	}
	if r.Method == http.MethodPost && !isForm(r) && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && r.ContentLength > 0 {
		adminError(w, http.StatusUnsupportedMediaType, "send a form (application/x-www-form-urlencoded) or JSON")
		return
	}
	route := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/admin")
	switch route {
	case "GET /device/pending":
		writeJSON(w, http.StatusOK, pendingJSON(tb.store.pending()))
	case "POST /device/approve":
		code, user := r.FormValue("user_code"), r.FormValue("user")
		if err := tb.ApproveDevice(code, user); err != nil {
			adminHelperError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "approved", "user_code": code, "user": user})
	case "POST /device/deny":
		code := r.FormValue("user_code")
		if err := tb.DenyDevice(code); err != nil {
			adminHelperError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "denied", "user_code": code})
	case "POST /device/approve-next":
		wait := 30 * time.Second
		if v := r.FormValue("wait"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > 10*time.Minute {
				adminError(w, http.StatusBadRequest, "wait must be a duration between 0 and 10m, like 30s")
				return
			}
			wait = d
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		req, err := tb.ApproveNext(ctx, r.FormValue("user"))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				adminError(w, http.StatusRequestTimeout, "no device request arrived within "+wait.String())
				return
			}
			adminHelperError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "approved", "user_code": req.UserCode, "user": r.FormValue("user")})
	case "POST /clock/advance":
		d, err := time.ParseDuration(r.FormValue("by"))
		if err != nil {
			adminError(w, http.StatusBadRequest, "by must be a Go duration, like 90m")
			return
		}
		tb.Clock.Advance(d)
		writeJSON(w, http.StatusOK, map[string]string{"now": tb.Clock.Now().UTC().Format(time.RFC3339)})
	case "GET /counters":
		writeJSON(w, http.StatusOK, tb.Counters())
	case "POST /counters/reset":
		tb.ResetCounters()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	case "GET /faults":
		out := []adminFault{}
		for e, fs := range tb.faults.active() {
			for _, f := range fs {
				af := adminFault{Endpoint: e, Kind: f.Kind, Status: f.Status, OAuthError: f.OAuthError, Size: f.Size, Count: f.Count, Grant: f.Grant}
				if f.Delay > 0 {
					af.Delay = f.Delay.String()
				}
				out = append(out, af)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case "POST /faults":
		tb.adminInject(w, r)
	case "DELETE /faults":
		var es []Endpoint
		if e := r.URL.Query().Get("endpoint"); e != "" {
			es = append(es, Endpoint(e))
		}
		tb.ClearFaults(es...)
		writeJSON(w, http.StatusOK, map[string]string{"status": "cleared"})
	case "POST /clients":
		tb.adminClient(w, r)
	default:
		adminError(w, http.StatusNotFound, "no such admin call: "+quoteBounded(route))
	}
}

type pendingRequest struct {
	UserCode  string    `json:"user_code"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	Audiences []string  `json:"audiences"`
	Expires   time.Time `json:"expires"`
}

func pendingJSON(reqs []DeviceRequest) []pendingRequest {
	out := []pendingRequest{}
	for _, r := range reqs {
		out = append(out, pendingRequest{r.UserCode, r.ClientID, nonNil(r.Scopes), nonNil(r.Audiences), r.Expires})
	}
	return out
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func adminHelperError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotPending) {
		status = http.StatusConflict
	} else if errors.Is(err, ErrUnknownUserCode) {
		status = http.StatusNotFound
	}
	msg := err.Error()
	var he *helper.Error
	if errors.As(err, &he) {
		msg = he.Msg
		if he.Fix != "" {
			msg += ": " + he.Fix
		}
	}
	adminError(w, status, msg)
}

// adminFault is the JSON form of a fault; delay is a Go duration string.
type adminFault struct {
	Endpoint   Endpoint  `json:"endpoint"`
	Kind       FaultKind `json:"kind"`
	Status     int       `json:"status,omitempty"`
	Delay      string    `json:"delay,omitempty"`
	OAuthError string    `json:"oauth_error,omitempty"`
	Size       int64     `json:"size,omitempty"`
	Count      int       `json:"count,omitempty"`
	Grant      string    `json:"grant,omitempty"`
}

func (tb *Testbed) adminInject(w http.ResponseWriter, r *http.Request) {
	var af adminFault
	if err := json.NewDecoder(r.Body).Decode(&af); err != nil {
		adminError(w, http.StatusBadRequest, "the body must be a JSON fault")
		return
	}
	f := Fault{Kind: af.Kind, Status: af.Status, OAuthError: af.OAuthError, Size: af.Size, Count: af.Count, Grant: af.Grant}
	if af.Delay != "" {
		d, err := time.ParseDuration(af.Delay)
		if err != nil || d < 0 {
			adminError(w, http.StatusBadRequest, "delay must be a Go duration, like 5s")
			return
		}
		f.Delay = d
	}
	if err := tb.Inject(af.Endpoint, f); err != nil {
		adminHelperError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "armed"})
}

func (tb *Testbed) adminClient(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID            string   `json:"id"`
		Secret        string   `json:"secret"`
		Name          string   `json:"name"`
		Grants        []string `json:"grants"`
		AllowPassword bool     `json:"allow_password"`
		Public        bool     `json:"public"`
		AuthMethod    string   `json:"auth_method"`
		Scopes        []string `json:"scopes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		adminError(w, http.StatusBadRequest, "the body must be a JSON client")
		return
	}
	spec, err := tb.RegisterClient(ClientSpec{
		ID: in.ID, Secret: in.Secret, Name: in.Name, Grants: in.Grants, AllowPassword: in.AllowPassword,
		Public: in.Public, AuthMethod: in.AuthMethod, Scopes: in.Scopes,
	})
	if err != nil {
		adminHelperError(w, err)
		return
	}
	out := map[string]any{"client_id": spec.ID, "grants": spec.Grants, "public": spec.Public}
	if !spec.Public {
		out["client_secret"] = spec.Secret
	}
	writeJSON(w, http.StatusCreated, out)
}
