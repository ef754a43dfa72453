package testbed

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// registrationRequest is the client metadata of RFC 7591 2 the test bed
// understands; other members are accepted and ignored.
type registrationRequest struct {
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
	Contacts                []string `json:"contacts"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // only fails for a client that went away
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// handleRegistration serves RFC 7591 registration (POST on the endpoint)
// and RFC 7592 read/delete (GET/DELETE on registration_client_uri).
func (tb *Testbed) handleRegistration(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathRegistration {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "register a client with POST")
			return
		}
		tb.register(w, r)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, pathRegistration+"/")
	c, ok := tb.store.client(id)
	tok, hasTok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !hasTok || c.regToken == "" || !secretEqual(strings.TrimSpace(tok), c.regToken) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "missing or invalid registration access token")
		return
	}
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, tb.registrationResponse(c))
	case http.MethodDelete:
		tb.store.deleteClient(c.spec.ID)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the test bed supports reading (GET) and deleting (DELETE) a registration")
	}
}

func (tb *Testbed) register(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "cannot read the request body")
		return
	}
	var req registrationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not a JSON client metadata document")
		return
	}
	spec := ClientSpec{Name: req.ClientName, RedirectURIs: req.RedirectURIs, Scopes: splitList(req.Scope)}
	switch req.TokenEndpointAuthMethod {
	case "", string(oidc.AuthMethodBasic):
		spec.AuthMethod = string(oidc.AuthMethodBasic)
	case string(oidc.AuthMethodPost):
		spec.AuthMethod = string(oidc.AuthMethodPost)
	case string(oidc.AuthMethodNone):
		spec.Public = true
	default:
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none")
		return
	}
	for _, g := range req.GrantTypes {
		v, ok := normalizeGrant(g)
		switch {
		case g == "implicit":
			continue // no implicit flow; IAM drops it as well
		case !ok:
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "unsupported grant type "+quoteBounded(g))
			return
		case v == GrantPassword:
			continue // needs an administrator, as at IAM
		}
		spec.Grants = append(spec.Grants, v)
	}
	if len(req.GrantTypes) > 0 && len(spec.Grants) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "none of the requested grant types can be registered dynamically")
		return
	}
	meta := map[string]any{"response_types": req.ResponseTypes, "application_type": req.ApplicationType, "contacts": req.Contacts}
	c, err := tb.store.addClient(spec, true, meta)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "cannot register the client")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", tb.IssuerURL+pathRegistration+"/"+c.spec.ID)
	writeJSON(w, http.StatusCreated, tb.registrationResponse(c))
}

// registrationResponse is the client information response (RFC 7591 3.2.1,
// RFC 7592 3).
func (tb *Testbed) registrationResponse(c *client) map[string]any {
	out := map[string]any{
		"client_id":                  c.spec.ID,
		"client_id_issued_at":        c.issuedAt.Unix(),
		"client_name":                c.spec.Name,
		"grant_types":                c.spec.Grants,
		"token_endpoint_auth_method": c.spec.AuthMethod,
		"scope":                      strings.Join(c.spec.Scopes, " "),
		"redirect_uris":              nonNil(c.spec.RedirectURIs),
		"registration_access_token":  c.regToken,
		"registration_client_uri":    tb.IssuerURL + pathRegistration + "/" + c.spec.ID,
	}
	if !c.spec.Public {
		out["client_secret"] = c.spec.Secret
		out["client_secret_expires_at"] = 0
	}
	for k, v := range c.meta {
		if v != nil && !isEmpty(v) {
			out[k] = v
		}
	}
	if _, ok := out["response_types"]; !ok {
		out["response_types"] = []string{"code"}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case []string:
		return len(x) == 0
	}
	return false
}

// quoteBounded quotes a client-supplied value for an error message.
func quoteBounded(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
