package native

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Endpoints are the provider URLs the backend uses, from its metadata.
type Endpoints struct {
	Token               string `json:"token"`
	DeviceAuthorization string `json:"device_authorization,omitempty"`
	Registration        string `json:"registration,omitempty"`
	Revocation          string `json:"revocation,omitempty"`
}

// Metadata is what the backend reads from a provider's discovery document
// (OpenID Connect Discovery 1.0 section 3, RFC 8414 section 2).
type Metadata struct {
	Issuer      string
	Endpoints   Endpoints
	GrantTypes  []string // grant_types_supported (empty: not stated)
	AuthMethods []string // token_endpoint_auth_methods_supported
	Scopes      []string // scopes_supported
}

// SupportsGrant reports whether the provider says it supports grant g
// (true when it does not say).
func (m *Metadata) SupportsGrant(g string) bool {
	return len(m.GrantTypes) == 0 || slices.Contains(m.GrantTypes, g)
}

type discoveryDoc struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
}

// discover reads the provider's metadata: first
// ISSUER/.well-known/openid-configuration, then the RFC 8414 location
// (/.well-known/oauth-authorization-server inserted before the issuer's
// path). The document's issuer must be the configured one (a trailing
// slash aside), and every endpoint https (http only on loopback).
func (p *provider) discover(ctx context.Context) (*Metadata, error) {
	base := strings.TrimSuffix(p.issuer, "/")
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, helper.Errorf(helper.KindConfig, "issuer %q is not a URL", clean(p.issuer, 200)).WithFix("set issuer to the provider's URL, e.g. https://wlcg.cloud.cnaf.infn.it/")
	}
	candidates := []string{base + "/.well-known/openid-configuration"}
	rfc8414 := *u
	rfc8414.Path = "/.well-known/oauth-authorization-server" + u.Path
	candidates = append(candidates, rfc8414.String())

	var lastStatus int
	for _, c := range candidates {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c, nil)
		if err != nil {
			return nil, helper.Errorf(helper.KindConfig, "issuer %q is not a usable URL", clean(p.issuer, 200))
		}
		status, _, body, err := p.do(ctx, req, "its metadata")
		if err != nil {
			return nil, err
		}
		if status == http.StatusNotFound {
			lastStatus = status
			continue
		}
		if status != http.StatusOK {
			return nil, httpStatusError(status, body, "the provider's discovery endpoint "+c)
		}
		return p.parseMetadata(body, c)
	}
	return nil, helper.Errorf(helper.KindConfig, "%s publishes no OpenID provider metadata (HTTP %d at %s)", base, lastStatus, candidates[0]).
		WithFix("check the issuer URL (INDIGO IAM issuers look like https://wlcg.cloud.cnaf.infn.it/)")
}

func (p *provider) parseMetadata(body []byte, where string) (*Metadata, error) {
	var d discoveryDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider's metadata at %s is not valid JSON", where).
			WithFix("check the issuer URL; retry later")
	}
	if !sameIssuer(d.Issuer, p.issuer) {
		return nil, helper.Errorf(helper.KindConfig, "the metadata at %s is for issuer %q, not %q", where, clean(d.Issuer, 200), p.issuer).
			WithFix("set issuer to %q", clean(d.Issuer, 200))
	}
	m := &Metadata{
		Issuer: d.Issuer,
		Endpoints: Endpoints{
			Token:               d.TokenEndpoint,
			DeviceAuthorization: d.DeviceAuthorizationEndpoint,
			Registration:        d.RegistrationEndpoint,
			Revocation:          d.RevocationEndpoint,
		},
		GrantTypes:  d.GrantTypesSupported,
		AuthMethods: d.TokenEndpointAuthMethodsSupported,
		Scopes:      d.ScopesSupported,
	}
	if m.Endpoints.Token == "" {
		return nil, helper.Errorf(helper.KindConfig, "the provider's metadata at %s names no token endpoint", where).
			WithFix("check the issuer URL")
	}
	for name, e := range map[string]*string{
		"token_endpoint":                &m.Endpoints.Token,
		"device_authorization_endpoint": &m.Endpoints.DeviceAuthorization,
		"registration_endpoint":         &m.Endpoints.Registration,
		"revocation_endpoint":           &m.Endpoints.Revocation,
	} {
		if *e == "" {
			continue
		}
		if err := checkEndpoint(*e); err != nil {
			if name == "token_endpoint" {
				return nil, helper.Errorf(helper.KindUnsafe, "the provider's %s %q is refused: %v", name, clean(*e, 200), err).
					WithFix("secrets are only sent over https; check the issuer URL")
			}
			*e = "" // an optional endpoint we will not use
		}
	}
	return m, nil
}

// describeGrants names the grants for messages.
func describeGrants(gs []string) string {
	names := make([]string, 0, len(gs))
	for _, g := range gs {
		switch g {
		case grantDeviceCode:
			names = append(names, "device code")
		case grantRefreshToken:
			names = append(names, "refresh token")
		case grantTokenExchange:
			names = append(names, "token exchange")
		case grantClientCredentials:
			names = append(names, "client credentials")
		case grantPassword:
			names = append(names, "password")
		default:
			names = append(names, clean(g, 60))
		}
	}
	return strings.Join(names, ", ")
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
